// Types of layers.mjs, for the test that checks it (test/unit/scripts/lint/layers.test.ts).
import type { ESLint } from 'eslint';

export interface Layer {
  name: string;
  rank: number;
  paths: string[];
}
export declare const LAYERS: Layer[];
export declare function layerOf(rel: string): Layer | null;
export declare function violation(from: Layer, to: Layer): string | null;
declare const plugin: ESLint.Plugin;
export default plugin;
