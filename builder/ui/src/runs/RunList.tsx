/** The app's runs, newest first: filters by status and kind, and a page at a time. */
import { useCallback, useEffect, useState } from "react";
import { Link } from "wouter";
import type { RunSummary } from "../api/types";
import type { RunStatus } from "../store/run";
import { T } from "../testids";
import { type RunKindFilter, listRuns } from "./api";
import { duration, elapsedMs, kindLabel, shortId, when } from "./format";
import { RUN_ICONS, runLabel } from "./status";

const STATUSES: RunStatus[] = ["queued", "running", "waiting", "succeeded", "failed", "blocked", "cancelled"];
const KINDS: { value: RunKindFilter; label: string }[] = [
  { value: "all", label: "Runs and node tests" },
  { value: "run", label: "Runs only (app and draft)" },
  { value: "node_test", label: "Node tests only" },
];
const PAGE = 25;

function RunRow({ run, appId }: { run: RunSummary; appId: string }) {
  return (
    <tr data-testid={T.runRow} data-run-id={run.id} data-status={run.status}>
      <td><Link href={`/apps/${appId}/runs?run=${run.id}`}>Run {shortId(run.id)}</Link></td>
      <td>{kindLabel(run)} <span className="muted">· {run.trigger}</span></td>
      <td className={`run-${run.status}`}><span aria-hidden="true">{RUN_ICONS[run.status] ?? "?"}</span> {runLabel(run.status)}</td>
      <td>{run.version_number ? `Version ${run.version_number}` : "Draft"}</td>
      <td>{when(run.started_at ?? run.created_at)}</td>
      <td>{duration(elapsedMs(run.started_at, run.finished_at))}</td>
    </tr>
  );
}

export function RunList({ appId }: { appId: string }) {
  const [status, setStatus] = useState<RunStatus | "">("");
  const [kind, setKind] = useState<RunKindFilter>("all");
  const [runs, setRuns] = useState<RunSummary[] | null>(null);
  const [total, setTotal] = useState(0);
  const [error, setError] = useState("");

  const load = useCallback(async (offset: number) => {
    setError("");
    try {
      const page = await listRuns(appId, { status, kind }, offset, PAGE);
      setRuns((old) => (offset === 0 ? page.items : [...(old ?? []), ...page.items]));
      setTotal(page.total);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
  }, [appId, status, kind]);

  useEffect(() => {
    setRuns(null);
    void load(0);
  }, [load]);

  return (
    <section aria-labelledby="runs-title" className="runs-list">
      <div className="runs-filters">
        <h2 id="runs-title">Runs</h2>
        <label htmlFor="runs-status">Status</label>
        <select id="runs-status" value={status} onChange={(e) => setStatus(e.target.value as RunStatus | "")}
          data-testid={T.runsStatusFilter}>
          <option value="">Any status</option>
          {STATUSES.map((s) => <option key={s} value={s}>{runLabel(s)}</option>)}
        </select>
        <label htmlFor="runs-kind">Kind</label>
        <select id="runs-kind" value={kind} onChange={(e) => setKind(e.target.value as RunKindFilter)} data-testid={T.runsKindFilter}>
          {KINDS.map((k) => <option key={k.value} value={k.value}>{k.label}</option>)}
        </select>
        <button type="button" onClick={() => void load(0)}>Refresh</button>
      </div>
      {error && <p role="alert" className="error">{error}</p>}
      {runs === null ? <p role="status">Loading the runs…</p> : runs.length === 0 ? (
        <p role="status">{status ? `No ${status} runs.` : "No runs yet: test the draft in the editor, or run a published version."}</p>
      ) : (
        <>
          <table className="runs-table" data-testid={T.runsList}>
            <caption className="visually-hidden">The app's runs, newest first</caption>
            <thead>
              <tr><th scope="col">Run</th><th scope="col">Kind</th><th scope="col">Status</th><th scope="col">Version</th>
                <th scope="col">Started</th><th scope="col">Took</th></tr>
            </thead>
            <tbody>{runs.map((r) => <RunRow key={r.id} run={r} appId={appId} />)}</tbody>
          </table>
          <p className="muted" role="status">Showing {runs.length} of {total}.</p>
          {runs.length < total && <button type="button" onClick={() => void load(runs.length)}>Show more</button>}
        </>
      )}
    </section>
  );
}
