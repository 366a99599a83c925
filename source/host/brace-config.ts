import {splitSegments, stripEol} from './markers.js';

/**
 * The shape dhcpd.conf and nginx.conf share: words and quoted strings,
 * statements ended by `;`, blocks in braces, `#` comments to the end of the
 * line. Positions are kept so that edits can land on exact lines.
 */

export type BraceToken = {
	kind: 'word' | 'string' | 'punctuation';
	text: string;
	/** 0-based line and column. */
	line: number;
	column: number;
};

export type BraceStatement = {
	words: BraceToken[];
	/** Inner statements, when the statement is a block. */
	children?: BraceStatement[];
	/** The `;`, or the `}` closing the block. */
	end: BraceToken;
	open?: BraceToken;
};

export class BraceParseError extends Error {
	constructor(
		message: string,
		readonly line: number,
	) {
		super(`line ${line + 1}: ${message}`);
		this.name = 'BraceParseError';
	}
}

export type BraceSyntax = {
	/** Characters that end a word besides braces and `;` (dhcpd: `,`). */
	punctuation?: string;
	/** Quote characters (nginx: both; dhcpd: `"` only). */
	quotes?: string;
};

export function tokenizeBraceConfig(text: string, syntax: BraceSyntax = {}): BraceToken[] {
	const punctuation = `{};${syntax.punctuation ?? ''}`;
	const quotes = syntax.quotes ?? `"'`;
	const tokens: BraceToken[] = [];
	const lines = splitSegments(text).map((segment) => stripEol(segment));
	let open: {token: BraceToken; quote: string} | undefined;
	for (const [lineIndex, line] of lines.entries()) {
		let index = 0;
		if (open) {
			// A quoted string may span lines; keep reading it.
			index = readString(line, 0, open.token, open.quote);
			if (index < 0) {
				open.token.text += '\n';
				continue;
			}

			tokens.push(open.token);
			open = undefined;
		}

		while (index < line.length) {
			const char = line[index]!;
			if (char === ' ' || char === '\t') {
				index++;
			} else if (char === '#') {
				break;
			} else if (punctuation.includes(char)) {
				tokens.push({kind: 'punctuation', text: char, line: lineIndex, column: index});
				index++;
			} else if (quotes.includes(char)) {
				const token: BraceToken = {kind: 'string', text: '', line: lineIndex, column: index};
				const end = readString(line, index + 1, token, char);
				if (end < 0) {
					token.text += '\n';
					open = {token, quote: char};
					break;
				}

				tokens.push(token);
				index = end;
			} else {
				let end = index;
				while (end < line.length && !` \t${quotes}${punctuation}`.includes(line[end]!)) {
					end += line[end] === '\\' ? 2 : 1;
				}

				tokens.push({kind: 'word', text: line.slice(index, end), line: lineIndex, column: index});
				index = end;
			}
		}
	}

	if (open) throw new BraceParseError('unterminated string', open.token.line);
	return tokens;
}

/** Reads a string body from `start`; returns the index after the closing quote, or -1 if the line ends first. */
function readString(line: string, start: number, token: BraceToken, quote: string): number {
	for (let index = start; index < line.length; index++) {
		const char = line[index]!;
		if (char === '\\') {
			token.text += line[index + 1] ?? '';
			index++;
		} else if (char === quote) {
			return index + 1;
		} else {
			token.text += char;
		}
	}

	return -1;
}

export function parseBraceConfig(text: string, syntax: BraceSyntax = {}): BraceStatement[] {
	const tokens = tokenizeBraceConfig(text, syntax);
	let position = 0;
	const parseBlock = (closer?: BraceToken): BraceStatement[] => {
		const statements: BraceStatement[] = [];
		let words: BraceToken[] = [];
		while (position < tokens.length) {
			const token = tokens[position++]!;
			if (token.kind === 'punctuation' && token.text === ';') {
				statements.push({words, end: token});
				words = [];
			} else if (token.kind === 'punctuation' && token.text === '{') {
				const children = parseBlock(token);
				statements.push({words, children, open: token, end: tokens[position - 1]!});
				words = [];
			} else if (token.kind === 'punctuation' && token.text === '}') {
				if (!closer) throw new BraceParseError('"}" without "{"', token.line);
				if (words.length > 0) throw new BraceParseError(`"${words.at(-1)!.text}" needs a ";"`, token.line);
				return statements;
			} else {
				words.push(token);
			}
		}

		if (closer) throw new BraceParseError('"{" never closed', closer.line);
		if (words.length > 0) throw new BraceParseError(`"${words.at(-1)!.text}" needs a ";"`, words.at(-1)!.line);
		return statements;
	};

	return parseBlock();
}

/** Every statement, depth first, with the blocks enclosing it. */
export function* walkStatements(
	statements: BraceStatement[],
	parents: BraceStatement[] = [],
): Generator<{statement: BraceStatement; parents: BraceStatement[]}> {
	for (const statement of statements) {
		yield {statement, parents};
		if (statement.children) yield* walkStatements(statement.children, [...parents, statement]);
	}
}
