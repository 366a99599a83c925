#!/usr/bin/env bash
# Regenerates the README pictures from the real program:
#   media/run.png   the TUI at 80x24 in the middle of the disk copy (progress bar, rate, ETA, snapshot fill)
#   media/plan.png  the plan of the DHCP host stage with its file diff, the terminal made taller (80x36) so the
#                   whole diff fits instead of "(N more lines, press d for the full diff)"
#
# Usage, as root from anywhere:   media/make-screenshots.sh
#   SIZE=8G media/make-screenshots.sh   when the copy ends before a picture of it could be taken (default 4G)
#
# How: builds the project (npm run build), runs `farmclone demo` on a simulated farm in a temp dir inside a
# detached tmux session, answers the TUI with send-keys as a person would (Enter per stage, the farm's name for
# the copy), captures the pane with its colours (tmux capture-pane -e), turns the ANSI text into an HTML page
# (dark background, DejaVu Sans Mono, the 16 ANSI colours) and screenshots it with headless Chromium.
# Needs: node, tmux, chromium and fonts-dejavu-core (apt-get install -y chromium fonts-dejavu-core), plus the
# demo's own packages (see README). Disk: about 3 x SIZE in the temp dir while it runs.
# Cleans up on exit, also on failure: the tmux session, the demo's services (demo --stop) and its temp dirs.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
media="$root/media"
size=${SIZE:-4G}
farm=gallifrey-dev
session="farmclone-shots-$$"
work=$(mktemp -d /tmp/farmclone-shots.XXXXXX)
# The demo's directory shows in the plans' paths: keep it short.
dir=$(mktemp -d /tmp/demo.XXXXXX)

cleanup() {
	tmux kill-session -t "$session" 2>/dev/null || true
	node "$root/dist/cli.js" demo --stop --dir "$dir" >/dev/null 2>&1 || true
	rm -rf "$dir" "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

(cd "$root" && npm run --silent build)

# The ANSI-to-HTML renderer: one cell per character so every glyph sits on the 80-column grid, even the ones
# (braille spinner, check marks) the font takes from a fallback.
cat >"$work/ansi-to-html.mjs" <<'EOF'
import fs from 'node:fs';

const [input, output, columns, rows] = process.argv.slice(2);
const palette = [
	'#1e1e1e', '#e05561', '#8cc265', '#d8b05a', '#4aa5f0', '#c162de', '#42b3c2', '#d4d4d4',
	'#5c6370', '#ff616e', '#a5e075', '#f0c05a', '#4dc4ff', '#de73ff', '#4cd1e0', '#ffffff',
];
const foreground = '#d4d4d4';
const background = '#1e1e1e';

function color256(n) {
	if (n < 16) return palette[n];
	if (n >= 232) {
		const level = 8 + (n - 232) * 10;
		return `rgb(${level},${level},${level})`;
	}
	const cube = n - 16;
	const step = (v) => (v === 0 ? 0 : 55 + v * 40);
	return `rgb(${step(Math.floor(cube / 36))},${step(Math.floor(cube / 6) % 6)},${step(cube % 6)})`;
}

// Block and shade characters fill the whole cell, as terminals draw them, so the progress bar is one solid band.
const shades = {
	'█': 'background:currentColor',
	'▓': 'background:color-mix(in srgb,currentColor 75%,transparent)',
	'▒': 'background:color-mix(in srgb,currentColor 50%,transparent)',
	'░': 'background:color-mix(in srgb,currentColor 25%,transparent)',
};

function escape(text) {
	return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

const fresh = () => ({fg: undefined, bg: undefined, bold: false, dim: false, italic: false, underline: false, inverse: false});
let style = fresh();

function applySgr(parameters) {
	const codes = parameters === '' ? [0] : parameters.split(/[;:]/).map(Number);
	for (let i = 0; i < codes.length; i++) {
		const code = codes[i];
		if (code === 0) style = fresh();
		else if (code === 1) style.bold = true;
		else if (code === 2) style.dim = true;
		else if (code === 3) style.italic = true;
		else if (code === 4) style.underline = true;
		else if (code === 7) style.inverse = true;
		else if (code === 22) style.bold = style.dim = false;
		else if (code === 23) style.italic = false;
		else if (code === 24) style.underline = false;
		else if (code === 27) style.inverse = false;
		else if (code >= 30 && code <= 37) style.fg = palette[code - 30];
		else if (code >= 90 && code <= 97) style.fg = palette[code - 90 + 8];
		else if (code >= 40 && code <= 47) style.bg = palette[code - 40];
		else if (code >= 100 && code <= 107) style.bg = palette[code - 100 + 8];
		else if (code === 39) style.fg = undefined;
		else if (code === 49) style.bg = undefined;
		else if (code === 38 || code === 48) {
			let value;
			if (codes[i + 1] === 5) {
				value = color256(codes[i + 2]);
				i += 2;
			} else if (codes[i + 1] === 2) {
				value = `rgb(${codes[i + 2]},${codes[i + 3]},${codes[i + 4]})`;
				i += 4;
			}
			if (code === 38) style.fg = value;
			else style.bg = value;
		}
	}
}

function css() {
	let fg = style.fg ?? foreground;
	let bg = style.bg;
	if (style.inverse) [fg, bg] = [bg ?? background, fg];
	const rules = [`color:${fg}`];
	if (bg) rules.push(`background:${bg}`);
	if (style.bold) rules.push('font-weight:bold');
	if (style.dim) rules.push('opacity:0.6');
	if (style.italic) rules.push('font-style:italic');
	if (style.underline) rules.push('text-decoration:underline');
	return rules.join(';');
}

const lines = fs.readFileSync(input, 'utf8').replace(/\n$/, '').split('\n').slice(0, Number(rows));
const html = lines.map((line) => {
	let out = '';
	let run = '';
	let runStyle = css();
	const flush = () => {
		if (run) out += `<span style="${runStyle}">${run}</span>`;
		run = '';
	};
	for (let i = 0; i < line.length; ) {
		const sgr = /^\x1b\[([0-9;:]*)m/.exec(line.slice(i));
		if (sgr) {
			flush();
			applySgr(sgr[1]);
			runStyle = css();
			i += sgr[0].length;
			continue;
		}
		if (line[i] === '\x1b') {
			// Any other escape sequence (none is expected from capture-pane) is dropped.
			const other = /^\x1b(\[[0-9;?]*[A-Za-z]|\][^\x07]*\x07|.)/.exec(line.slice(i));
			i += other ? other[0].length : 1;
			continue;
		}
		const char = String.fromCodePoint(line.codePointAt(i));
		i += char.length;
		const shade = shades[char];
		run += shade === undefined ? `<i>${escape(char)}</i>` : `<i style="${shade}"></i>`;
	}
	flush();
	return `<div class="row">${out}</div>`;
});

fs.writeFileSync(
	output,
	`<!doctype html><meta charset="utf-8"><style>
html,body{margin:0;background:${background}}
.term{box-sizing:border-box;padding:14px 16px;font:15px/19px 'DejaVu Sans Mono',monospace;color:${foreground};
width:calc(${columns} * 9.03px + 32px);height:calc(${rows} * 19px + 28px)}
.row{height:19px;white-space:pre}
i{font-style:inherit;display:inline-block;vertical-align:top;width:9.03px;height:19px;text-align:center;overflow:visible}
</style><div class="term">${html.join('\n')}</div>`,
);
EOF

# Renders the visible pane to PNG at twice the CSS size (crisp on high-density screens).
shoot() {
	local name=$1 columns=$2 rows=$3
	tmux capture-pane -e -p -t "$session" >"$work/$name.ansi"
	node "$work/ansi-to-html.mjs" "$work/$name.ansi" "$work/$name.html" "$columns" "$rows"
	local width=$(((columns * 903 + 99) / 100 + 32)) height=$((rows * 19 + 28))
	chromium --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
		--disable-sync --no-first-run --hide-scrollbars --force-device-scale-factor=2 \
		--user-data-dir="$work/chromium" --window-size="$width,$height" \
		--screenshot="$media/$name.png" "file://$work/$name.html" >/dev/null 2>&1
	echo "wrote $media/$name.png ($(stat -c %s "$media/$name.png") bytes)"
}

screen() { tmux capture-pane -p -t "$session"; }

# The stage the panel shows, e.g. "8/15 DHCP host", from its heading line.
stage_of() { sed -n 's/^[^ ]\{1,4\} \([0-9]\{1,2\}\/[0-9]\{1,2\} .*\)$/\1/p' <<<"$1" | tail -n 1; }

tmux new-session -d -s "$session" -x 80 -y 24 \
	"env -u CI -u NO_COLOR -u FORCE_COLOR TERM=xterm-256color FARMCLONE_CONFIG_DIR= FARMCLONE_STATE_DIR= \
	node '$root/dist/cli.js' demo --size '$size' --dir '$dir'; sleep 600"

declare -A answered=()
copy_shot=false
deadline=$((SECONDS + 600))
while ((SECONDS < deadline)); do
	now=$(screen)
	stage=$(stage_of "$now")
	if ! $copy_shot && grep -q 'Copy the disk running' <<<"$now"; then
		percent=$(grep -o '[0-9]\{1,3\}%$' <<<"$now" | tail -n 1 | tr -d %)
		if [[ -n $percent ]] && ((percent >= 30 && percent <= 80)) && grep -q 'ETA [0-9]' <<<"$now"; then
			shoot run 80 24
			copy_shot=true
		elif [[ -n $percent ]] && ((percent > 80)); then
			echo "the copy went past 80% before a picture: run again with a bigger SIZE (now $size)" >&2
			exit 1
		fi
		sleep 0.2
		continue
	fi
	if grep -q 'Enter run' <<<"$now" && [[ $stage == *' DHCP host' ]]; then
		if ! $copy_shot; then
			echo "the copy ended before a picture of it: run again with a bigger SIZE (now $size)" >&2
			exit 1
		fi
		# A taller terminal so the whole dhcpd.conf diff fits under the plan.
		tmux resize-window -t "$session" -x 80 -y 36
		sleep 2
		shoot plan 80 36
		tmux send-keys -t "$session" q
		sleep 2
		exit 0
	fi
	if grep -q "Type the farm's name" <<<"$now"; then
		if [[ -z ${answered["typed $stage"]:-} ]]; then
			answered["typed $stage"]=1
			tmux send-keys -t "$session" -l "$farm"
			tmux send-keys -t "$session" Enter
		fi
	elif grep -q '(y/n)' <<<"$now"; then
		tmux send-keys -t "$session" y
	elif grep -q 'Enter run' <<<"$now" && [[ -n $stage && -z ${answered["run $stage"]:-} ]]; then
		answered["run $stage"]=1
		tmux send-keys -t "$session" Enter
	fi
	sleep 0.5
done
echo "the demo did not reach the DHCP host plan in time; last screen:" >&2
screen >&2
exit 1
