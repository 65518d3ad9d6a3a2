/**
 * Test one node alone: one typed field per input port, a "side effects" checkbox for blocks that
 * can act outside Mantle, then the node run through the workers (POST .../nodes/{id}/test) and
 * its outputs or error, its status and streamed text shown on the canvas too.
 */
import { type FormEvent, useMemo, useState } from "react";
import { Dialog } from "../common/Dialog";
import { useDraftSync } from "../problems/draftSync";
import { ApiError, testNode } from "../runs/api";
import { startView } from "../runs/events";
import { followRun } from "../runs/follow";
import { RunOutcome } from "../runs/RunOutcome";
import { portsOf, useGraph } from "../store/graph";
import { useRun } from "../store/run";
import { T } from "../testids";
import { InputsForm } from "./InputsForm";
import { type InputValues, emptyValues, fieldsFromPorts, inputErrors, toInputs } from "./inputs";

interface Props {
  nodeId: string;
  open: boolean;
  onClose: () => void;
}

export function NodeTestDialog({ nodeId, open, onClose }: Props) {
  const sync = useDraftSync();
  const block = useGraph((s) => s.blocks[s.nodes.find((n) => n.id === nodeId)?.data.blockType ?? ""]);
  const inputs = useGraph((s) => portsOf(s, nodeId)?.inputs);
  const fields = useMemo(() => fieldsFromPorts(inputs ?? []), [inputs]);
  const [values, setValues] = useState<InputValues>({});
  const [sideEffects, setSideEffects] = useState(false);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [formError, setFormError] = useState("");
  const [testId, setTestId] = useState<string | null>(null);
  const watching = useRun((s) => s.runId !== null && s.runId === testId);
  const live = useRun((s) => s.live);
  const current = { ...emptyValues(fields), ...values };

  async function submit(event: FormEvent) {
    event.preventDefault();
    setFormError("");
    const { inputs: typed, errors: local } = toInputs(fields, current);
    setErrors(local);
    if (Object.keys(local).length > 0) return;
    try {
      await sync.flush();
      if (sync.queue.isStopped) throw new Error("The draft could not be saved, so the node was not tested.");
      const started = await testNode(sync.appId, nodeId, typed, sideEffects);
      setTestId(started.id);
      void followRun(started, startView([nodeId]));
    } catch (e) {
      const split = e instanceof ApiError ? inputErrors(e.body, e.message) : { fields: {}, form: String((e as Error).message) };
      setErrors(split.fields);
      setFormError(split.form);
    }
  }

  const text = useRun((s) => (watching ? s.nodes[nodeId]?.text : undefined));
  return (
    <Dialog title={`Test ${nodeId} alone`} open={open} onClose={onClose} testId={T.nodeTestDialog}>
      <form onSubmit={submit} noValidate className="node-test-form">
        <p className="field-desc">Runs only this block, through the workers, with the inputs you type here
          (one per input port). Nothing else in the draft runs.</p>
        <fieldset disabled={live} className="config-fields">
          <InputsForm fields={fields} values={current} errors={errors} onChange={setValues} idPrefix={`node-test-${nodeId}`} />
          {block?.side_effects && (
            <div className="field side-effects">
              <div className="check">
                <input id="node-test-side-effects" type="checkbox" checked={sideEffects}
                  onChange={(e) => setSideEffects(e.target.checked)} aria-describedby="node-test-side-effects-help" />
                <label htmlFor="node-test-side-effects">Allow side effects</label>
              </div>
              <p id="node-test-side-effects-help" className="field-desc">This block can act outside Mantle: send a real
                SMS, or change data in another service (an HTTP request other than GET). Tick this to let the test
                really do it; without it such a test is refused and nothing is sent.</p>
            </div>
          )}
        </fieldset>
        {formError && <p role="alert" className="error">{formError}</p>}
        {watching && (
          <div className="node-test-result" data-testid={T.nodeTestResult}>
            <RunOutcome outputsLabel={`Outputs of ${nodeId}`} />
            {text && live && <p className="block-run-text">{text}</p>}
          </div>
        )}
        <div className="dialog-buttons">
          <button type="submit" className="primary" disabled={live}>{live ? "Testing…" : "Run this node"}</button>
          <button type="button" onClick={onClose}>Close</button>
        </div>
      </form>
    </Dialog>
  );
}
