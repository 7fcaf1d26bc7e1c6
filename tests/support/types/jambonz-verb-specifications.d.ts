/** The parts of @jambonz/verb-specifications (plain JS) the tests use. */
declare module '@jambonz/verb-specifications' {
  interface Logger {
    info(...args: unknown[]): void;
    debug(...args: unknown[]): void;
    error(...args: unknown[]): void;
    warn?(...args: unknown[]): void;
  }
  /** Throws when a verb array breaks jambonz's verb specifications. */
  export function validate(logger: Logger, verbs: unknown): void;
  export const specs: Map<string, unknown>;
}
