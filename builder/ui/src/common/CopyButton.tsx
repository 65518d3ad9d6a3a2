/** Copies a text (a URL, a snippet) to the clipboard and says so; if the browser refuses, says how. */
import { useState } from "react";

interface Props {
  text: string;
  /** What is copied, for the button's accessible name: "Copy the share URL". */
  what: string;
  testId?: string;
}

export function CopyButton({ text, what, testId }: Props) {
  const [said, setSaid] = useState("");

  async function copy() {
    try {
      await navigator.clipboard.writeText(text);
      setSaid("Copied.");
    } catch {
      setSaid("Copying was refused by the browser: select the text and copy it.");
    }
  }

  return (
    <span className="copy">
      <button type="button" onClick={() => void copy()} aria-label={`Copy ${what}`} data-testid={testId}>Copy</button>
      <span role="status" className="copy-said">{said}</span>
    </span>
  );
}
