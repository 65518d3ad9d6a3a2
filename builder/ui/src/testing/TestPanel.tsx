/**
 * Test in place: a form generated from the draft's trigger (its output ports are the run's
 * inputs), the draft run with its nodes lighting up on the canvas from the event stream, the
 * run's outputs, and the node inspector for the block selected on the canvas.
 */
import { type FormEvent, useEffect, useMemo, useState } from "react";
import { useDraftSync } from "../problems/draftSync";
import { ApiError, cancelRun, startDraftRun } from "../runs/api";
import { startView } from "../runs/events";
import { followRun, stopFollowing } from "../runs/follow";
import { NodeInspector } from "../runs/NodeInspector";
import { RunOutcome } from "../runs/RunOutcome";
import { portsOf, useGraph } from "../store/graph";
import { useProblems } from "../store/problems";
import { useRun } from "../store/run";
import { T } from "../testids";
import { InputsForm } from "./InputsForm";
import { type InputField, type InputValues, emptyValues, fieldLabels, fieldsFromPorts, inputErrors, toInputs } from "./inputs";
import { closeTesting, useTesting } from "./store";
import "./testing.css";

/** The trigger node's id and the fields of its inputs (null when the draft has no trigger). */
function useTriggerFields(): { id: string; fields: InputField[] } | null {
  const nodes = useGraph((s) => s.nodes);
  const blocks = useGraph((s) => s.blocks);
  const ports = useGraph((s) => s.ports);
  return useMemo(() => {
    const trigger = nodes.find((n) => blocks[n.data.blockType]?.trigger);
    if (!trigger) return null;
    const outputs = portsOf({ nodes, ports, blocks }, trigger.id)?.outputs ?? [];
    return { id: trigger.id, fields: fieldsFromPorts(outputs, fieldLabels(trigger.data.config)) };
  }, [nodes, blocks, ports]);
}

function RunControls() {
  const runId = useRun((s) => s.runId);
  const [error, setError] = useState("");
  if (!runId) return null;
  const cancel = async () => {
    try {
      await cancelRun(runId);
    } catch (e) {
      setError(e instanceof Error ? e.message : "The run could not be cancelled.");
    }
  };
  return (
    <div className="run-controls">
      <button type="button" onClick={() => void cancel()} data-testid={T.cancelRun}>Cancel the run</button>
      <button type="button" onClick={() => stopFollowing("Stopped watching; the run goes on. Its result is in the Runs tab.")}>
        Stop watching</button>
      {error && <p role="alert" className="error">{error}</p>}
    </div>
  );
}

export function TestPanel({ appId }: { appId: string }) {
  const open = useTesting((s) => s.open);
  const trigger = useTriggerFields();
  const problems = useProblems((s) => s.problems.length);
  const live = useRun((s) => s.live);
  const runId = useRun((s) => s.runId);
  const sync = useDraftSync();
  const [values, setValues] = useState<InputValues>({});
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [formError, setFormError] = useState("");
  const [busy, setBusy] = useState(false);
  useEffect(() => closeTesting, []); // leaving the editor stops watching and clears the canvas
  if (!open) return null;

  const fields = trigger?.fields ?? [];
  const current = { ...emptyValues(fields), ...values };
  const reason = !trigger ? "Add a trigger block (such as API trigger or Web form) to test the draft."
    : problems > 0 ? `Fix ${problems} problem${problems === 1 ? "" : "s"} first: a draft with problems cannot run.` : "";

  async function run(event: FormEvent) {
    event.preventDefault();
    setFormError("");
    const { inputs, errors: local } = toInputs(fields, current);
    setErrors(local);
    if (Object.keys(local).length > 0) return;
    setBusy(true);
    try {
      await sync.flush();
      if (sync.queue.isStopped) throw new Error("The draft could not be saved, so it was not run.");
      const started = await startDraftRun(appId, inputs);
      void followRun(started, startView(useGraph.getState().nodes.map((n) => n.id)));
    } catch (e) {
      const split = e instanceof ApiError ? inputErrors(e.body, e.message) : { fields: {}, form: String((e as Error).message) };
      setErrors(split.fields);
      setFormError(split.form);
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="test-panel" aria-labelledby="test-panel-title" data-testid={T.testPanel}>
      <div className="panel-head">
        <h2 id="test-panel-title">Test the draft</h2>
        <button type="button" onClick={closeTesting} disabled={live}>Close</button>
      </div>
      <form onSubmit={run} data-testid={T.testForm} aria-labelledby="test-panel-title" noValidate>
        <fieldset disabled={live || busy} className="config-fields">
          {trigger && <p className="field-desc">The inputs of <code>{trigger.id}</code>, as a caller would send them.</p>}
          <InputsForm fields={fields} values={current} errors={errors} onChange={setValues} idPrefix="test-input" />
        </fieldset>
        {reason && <p id="test-reason" className="publish-reason">{reason}</p>}
        {formError && <p role="alert" className="error">{formError}</p>}
        <button type="submit" className="primary" disabled={Boolean(reason) || live || busy}
          aria-describedby={reason ? "test-reason" : undefined}>{live ? "Running…" : "Run the draft"}</button>
      </form>
      {runId && <RunOutcome />}
      {live && <RunControls />}
      {runId && !live && <NodeInspector />}
    </section>
  );
}
