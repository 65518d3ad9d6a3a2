/** A button that asks first (revoke, remove, rotate, stop), and says why if the action then fails. */
import { type ReactNode, useState } from "react";
import { Dialog } from "./Dialog";

interface Props {
  /** The button's text, and the dialog's confirming button's unless `confirmLabel` says otherwise. */
  label: string;
  /** The accessible name when the label alone is ambiguous ("Revoke the link Newsletter"). */
  ariaLabel?: string;
  title: string;
  children: ReactNode;
  confirmLabel?: string;
  danger?: boolean;
  testId?: string;
  dialogTestId?: string;
  /** Resolves to an error sentence, or to "" when done. */
  onConfirm: () => Promise<string>;
}

export function ConfirmButton({ label, ariaLabel, title, children, confirmLabel, danger = true, testId, dialogTestId, onConfirm }: Props) {
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");

  async function confirm() {
    setBusy(true);
    const failure = await onConfirm().catch((e: unknown) => (e instanceof Error ? e.message : String(e)));
    setBusy(false);
    setError(failure);
    if (!failure) setOpen(false);
  }

  return (
    <>
      <button type="button" className={danger ? "danger" : undefined} aria-label={ariaLabel} data-testid={testId}
        onClick={() => { setError(""); setOpen(true); }}>{label}</button>
      <Dialog title={title} open={open} onClose={() => setOpen(false)} testId={dialogTestId}>
        {children}
        {error && <p role="alert" className="error">{error}</p>}
        <div className="dialog-buttons">
          <button type="button" className={danger ? "danger" : "primary"} disabled={busy} onClick={() => void confirm()}>
            {confirmLabel ?? label}
          </button>
          <button type="button" onClick={() => setOpen(false)} autoFocus>Cancel</button>
        </div>
      </Dialog>
    </>
  );
}
