/** How versions read to people: who published (an API key's name, not its id) and when. */

/** `key:<id>:<name>` (the API's actor of a key) reads as "<name> (API key)"; other actors as they are. */
export function actorLabel(actor: string): string {
  const match = /^key:[^:]+:(.+)$/.exec(actor);
  return match ? `${match[1]} (API key)` : actor;
}

/** A server time (UTC, maybe without its zone) in the reader's own time zone. */
export function localTime(iso: string, timeZone?: string): string {
  const zoned = /(Z|[+-]\d\d:?\d\d)$/.test(iso) ? iso : `${iso}Z`;
  return new Date(zoned).toLocaleString(undefined, timeZone ? { timeZone } : undefined);
}

/** A server time for people in the reader's zone, and also in `timeZone` when that is another one. */
export function timeInBoth(iso: string, timeZone: string): string {
  const here = localTime(iso);
  const there = localTime(iso, timeZone);
  return here === there ? here : `${here} (${there} in ${timeZone})`;
}
