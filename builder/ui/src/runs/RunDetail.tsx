/**
 * One run: the graph it executed with each node's status, the full trace beside it, and the
 * actions on it — re-run with the same inputs, retry from the failed node (the new run opens,
 * its reused nodes marked). A run that has not ended is followed live.
 */
import { useEffect, useState } from "react";
import { Link, useLocation } from "wouter";
import type { Block, GraphDoc, RunRead } from "../api/types";
import { loadBlocks } from "../problems/draftSync";
import { useRun } from "../store/run";
import { T } from "../testids";
import { getRun, getRunGraph, runAgain } from "./api";
import { ENDED, viewFromTrace } from "./events";
import { followRun, showRun } from "./follow";
import { duration, elapsedMs, kindLabel, shortId, when } from "./format";
import { Json } from "./NodeTraceView";
import { RunCanvas } from "./RunCanvas";
import { RunOutcome } from "./RunOutcome";
import { TracePanel } from "./TracePanel";

interface Loaded {
  run: RunRead;
  graph: GraphDoc;
  blocks: Record<string, Block>;
}

function useRunDetail(runId: string): { loaded: Loaded | null; error: string } {
  const [loaded, setLoaded] = useState<Loaded | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    let alive = true;
    setLoaded(null);
    setError("");
    Promise.all([getRun(runId), getRunGraph(runId), loadBlocks()]).then(([run, drawn, blocks]) => {
      if (!alive) return;
      setLoaded({ run, graph: drawn.graph as unknown as GraphDoc, blocks: Object.fromEntries(blocks.map((b) => [b.type, b])) });
      if (ENDED.has(run.status)) showRun(run);
      else void followRun(run, viewFromTrace(run));
    }).catch((e: unknown) => alive && setError(e instanceof Error ? e.message : String(e)));
    return () => {
      alive = false;
    };
  }, [runId]);
  return { loaded, error };
}

function Again({ appId, run }: { appId: string; run: RunRead }) {
  const live = useRun((s) => s.live);
  const status = useRun((s) => s.status);
  const [, navigate] = useLocation();
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const again = async (how: "retry" | "rerun") => {
    setBusy(true);
    setError("");
    try {
      const next = await runAgain(run.id, how);
      navigate(`/apps/${appId}/runs?run=${next.id}`);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  };
  const ended = !live && ENDED.has(status);
  return (
    <div className="run-actions">
      <button type="button" onClick={() => void again("rerun")} disabled={!ended || busy} data-testid={T.rerun}
        title="Run it again from the start, with the same inputs, on the same graph">Re-run with the same inputs</button>
      {status === "failed" && !live && (
        <button type="button" className="primary" onClick={() => void again("retry")} disabled={busy} data-testid={T.retry}
          title="A new run that reuses the outputs of the nodes that succeeded and runs the failed node and what follows">
          Retry from the failed node</button>
      )}
      {error && <p role="alert" className="error">{error}</p>}
    </div>
  );
}

/** The run's outputs or error, once it has ended. */
function RunEnd() {
  const live = useRun((s) => s.live);
  const status = useRun((s) => s.status);
  const outputs = useRun((s) => s.outputs);
  const error = useRun((s) => s.error);
  if (live || !ENDED.has(status)) return null;
  return (
    <>
      {error && <p className="error"><strong>Error:</strong> {error}</p>}
      {outputs !== undefined && outputs !== null && (
        <div data-testid={T.runOutputs}><h3>Outputs</h3><Json value={outputs} label="The run's outputs" /></div>
      )}
    </>
  );
}

export function RunDetail({ appId, runId }: { appId: string; runId: string }) {
  const { loaded, error } = useRunDetail(runId);
  const trace = useRun((s) => (s.runId === runId ? s.trace : null));
  const [selected, setSelected] = useState<string | null>(null);
  useEffect(() => setSelected(null), [runId]);

  if (error) return <p role="alert" className="error">{error}</p>;
  if (!loaded) return <p role="status">Opening the run…</p>;
  const { run, graph, blocks } = loaded;
  const reused = (trace ?? run).trace.filter((t) => t.reused).map((t) => t.node_id);
  const earlier = run.retry_of ?? run.rerun_of;

  return (
    <section className="run-detail" aria-labelledby="run-title" data-testid={T.runDetail} data-run-id={run.id}>
      <div className="run-head">
        <h2 id="run-title">{kindLabel(run)} {shortId(run.id)}</h2>
        <RunOutcome details={false} />
        <p className="muted">
          {run.version_number ? `Version ${run.version_number}` : "Draft"} · started {when(run.started_at ?? run.created_at)}
          {run.finished_at && ` · took ${duration(elapsedMs(run.started_at, run.finished_at))}`}
          {earlier && <> · {run.retry_of ? "retries" : "runs again"} <Link href={`/apps/${appId}/runs?run=${earlier}`}>run {shortId(earlier)}</Link></>}
        </p>
        {reused.length > 0 && <p className="reused-note">Reused from the failed run (not executed again): {reused.join(", ")}.</p>}
        <Again appId={appId} run={run} />
      </div>
      <div className="run-body">
        <RunCanvas graph={graph} blocks={blocks} selected={selected} onSelect={setSelected} />
        <aside className="run-side" aria-label="Inputs and trace">
          <h3>Inputs</h3>
          <Json value={run.inputs} label="The run's inputs" />
          <RunEnd />
          <TracePanel trace={(trace ?? run).trace} selected={selected} onSelect={setSelected} />
        </aside>
      </div>
    </section>
  );
}
