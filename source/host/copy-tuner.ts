/**
 * The copier's shape (window size x windows in flight) chosen on the copy
 * itself, in `max` and `auto`.
 * No fixed shape is fastest everywhere: on an idle machine the device is
 * latency-bound and small windows keep it busiest, while with the CPUs busy
 * every completion waits for the event loop and large windows need fewer of
 * them. So the copy goes in consecutive segments: a trial segment with each
 * candidate, then the fastest for a stretch, then the trials again (the load
 * changes). Each segment is finished before the next starts, so the resume
 * point stays one number.
 */
export type Shape = {window: number; workers: number};

export type Segment = {shape: Shape; bytes: number; trial: boolean};

const MiB = 1024 * 1024;

/** Bytes each candidate copies in a trial round: a few hundred ms at the rates measured, long enough to average. */
export const trialBytes = 256 * MiB;
/** How much faster than the preferred (earlier) candidate a later one must be to win a trial round. */
export const tieMargin = 0.05;
/** Bytes the winner copies before the candidates are tried again. */
export const retuneBytes = 4096 * MiB;

export function shapeText(shape: Shape): string {
	const {window, workers} = shape;
	return `${workers} x ${window % MiB === 0 ? `${window / MiB} MiB` : `${window} B`}`;
}

export class ShapeTuner {
	private readonly trialSize: number;
	private readonly retuneSize: number;
	private queued: Shape[] = [];
	private results: Array<{shape: Shape; rate: number}> = [];
	private winner: Shape | undefined;
	private sinceTrials = 0;

	/**
	 * `alignment`: every segment but the last is a whole number of it (the
	 * largest window), so that each segment starts on a window of every shape.
	 */
	constructor(
		readonly candidates: Shape[],
		readonly fallback: Shape,
		alignment: number,
		sizes: {trial: number; retune: number} = {trial: trialBytes, retune: retuneBytes},
	) {
		this.trialSize = Math.ceil(sizes.trial / alignment) * alignment;
		this.retuneSize = Math.ceil(sizes.retune / alignment) * alignment;
	}

	/** The next segment of a copy with `remaining` bytes left. */
	next(remaining: number): Segment {
		const due = this.winner === undefined || this.sinceTrials >= this.retuneSize;
		// A round only where the trials would take at most half of what is left: a short copy keeps its shape.
		if (due && this.queued.length === 0 && remaining >= 2 * this.candidates.length * this.trialSize) {
			this.queued = [...this.candidates];
		}

		const trial = this.queued.shift();
		if (trial) return {shape: trial, bytes: Math.min(this.trialSize, remaining), trial: true};
		const bytes = due ? remaining : Math.min(remaining, this.retuneSize - this.sinceTrials);
		return {shape: this.winner ?? this.fallback, bytes, trial: false};
	}

	/** A segment's measured time; returns the winner when it ends a trial round. */
	measured(segment: Segment, seconds: number): {winner: Shape; rates: Array<{shape: Shape; rate: number}>} | undefined {
		if (!segment.trial) {
			this.sinceTrials += segment.bytes;
			return undefined;
		}

		this.results.push({shape: segment.shape, rate: segment.bytes / Math.max(seconds, 1e-6)});
		if (this.queued.length > 0) return undefined;
		const rates = this.results;
		// The list's order is its preference: a later candidate wins only by more than the margin, so trials
		// that a rate limit (auto's) holds to the same rate keep the first.
		const best = rates.reduce((fastest, result) => (result.rate > fastest.rate * (1 + tieMargin) ? result : fastest));
		this.winner = best.shape;
		this.results = [];
		this.sinceTrials = 0;
		return {winner: best.shape, rates};
	}
}
