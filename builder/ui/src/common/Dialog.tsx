/** A modal dialog on the native <dialog> element (focus trap, Escape and the top layer for free). */
import { type ReactNode, useEffect, useId, useRef } from "react";

interface Props {
  title: string;
  open: boolean;
  onClose: () => void;
  children: ReactNode;
  testId?: string;
  /** Escape does nothing: the person must pick one of the dialog's buttons. */
  mustChoose?: boolean;
}

export function Dialog({ title, open, onClose, children, testId, mustChoose = false }: Props) {
  const ref = useRef<HTMLDialogElement>(null);
  // Unique per dialog: a list may hold one (closed) dialog per row, all with the same test id.
  const titleId = useId();

  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (open && !dialog.open) dialog.showModal();
    if (!open && dialog.open) dialog.close();
  }, [open]);

  return (
    <dialog ref={ref} aria-labelledby={titleId} data-testid={testId} className="dialog"
      onCancel={(e) => {
        e.preventDefault();
        if (!mustChoose) onClose();
      }}>
      {open && (
        <>
          <h2 id={titleId}>{title}</h2>
          {children}
        </>
      )}
    </dialog>
  );
}
