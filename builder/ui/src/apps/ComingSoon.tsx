/** A tab whose screen is not built yet. */
export function ComingSoon() {
  return <section className="coming-soon"><p>This screen is not available yet.</p></section>;
}
