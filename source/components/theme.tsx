import {defaultTheme, extendTheme, ThemeProvider, type Theme} from '@inkjs/ui';
import React, {createContext, useContext, type ReactNode} from 'react';

export type Tone = 'success' | 'warning' | 'error' | 'info' | 'accent' | 'add' | 'remove';

const colors: Record<Tone, string> = {
	success: 'green',
	warning: 'yellow',
	error: 'red',
	info: 'cyan',
	accent: 'magenta',
	add: 'green',
	remove: 'red',
};

const ColorContext = createContext(true);

/**
 * Whether NO_COLOR asks for no color. Neither chalk 5 nor Ink reads it (they
 * only honour FORCE_COLOR and the TTY), so the screen has to. Any value counts,
 * the empty string included.
 */
export function colorWanted(env: NodeJS.ProcessEnv = process.env): boolean {
	return env['NO_COLOR'] === undefined;
}

// @inkjs/ui's Select colours its pointer and labels; without colour, bold marks the focused line. Merged on first
// use: merging the whole theme costs tens of ms of the start-up, for NO_COLOR only.
let colorless: Theme | undefined;
const colorlessTheme = (): Theme =>
	(colorless ??= extendTheme(defaultTheme, {
		components: {
			Select: {
				styles: {
					focusIndicator: () => ({}),
					selectedIndicator: () => ({}),
					label: ({isFocused}: {isFocused: boolean}) => ({bold: isFocused}),
				},
			},
		},
	}));

export function ColorProvider({enabled, children}: {enabled: boolean; children: ReactNode}) {
	return (
		<ColorContext.Provider value={enabled}>
			<ThemeProvider theme={enabled ? defaultTheme : colorlessTheme()}>{children}</ThemeProvider>
		</ColorContext.Provider>
	);
}

/** A tone's colour for Ink's `color` prop, or undefined when colour is off. */
export function useTone(): (tone: Tone | undefined) => string | undefined {
	const enabled = useContext(ColorContext);
	return (tone) => (enabled && tone ? colors[tone] : undefined);
}
