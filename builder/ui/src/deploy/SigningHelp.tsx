/** How a caller signs a post to the webhook, when the published trigger asks for signatures. */
import type { Published } from "./usePublishedGraph";
import { nodeOfType } from "./usePublishedGraph";

export function SigningHelp({ published, url }: { published: Published | null | undefined; url: string }) {
  if (published === undefined) return null;
  const trigger = published ? nodeOfType(published.graph, "trigger.webhook") : undefined;
  if (!published || !trigger) {
    return <p className="warning">⚠ The published version does not start with trigger.webhook, so posts are refused
      (409) until a version that does is published.</p>;
  }
  const credential = trigger.config.signature_credential as string | null | undefined;
  const respond = trigger.config.respond === "output" ? "waits for the run and answers with its outputs"
    : "answers 202 with the run id at once";
  return (
    <div className="signing">
      <p>A <code>POST</code> with a JSON or form body starts version {published.version}; the webhook {respond}.
        Send an <code>Idempotency-Key</code> header to make retries safe.</p>
      {credential ? (
        <>
          <p>Posts must be signed: the header <code>X-Mantle-Signature: sha256=&lt;hex&gt;</code>, where the hex is the
            HMAC-SHA256 of the raw body keyed with the secret stored as the <code>webhook_secret</code> credential
            <code> {credential}</code>. Unsigned or wrongly signed posts get 403.</p>
          <pre className="snippet" aria-label="Example: sign and send a post with curl">{[
            `BODY='{"hello": "world"}'`,
            `SIG=$(printf '%s' "$BODY" | openssl dgst -sha256 -hmac "$SECRET" | sed 's/^.* //')`,
            `curl -X POST '${url || "<the webhook URL>"}' -H 'Content-Type: application/json' \\`,
            `  -H "X-Mantle-Signature: sha256=$SIG" --data "$BODY"`,
          ].join("\n")}</pre>
        </>
      ) : (
        <p>Posts are not signed: anyone with the URL can start the app. To require signatures, set the trigger's
          <code> signature_credential</code> to a <code>webhook_secret</code> credential in the editor and publish.</p>
      )}
    </div>
  );
}
