/** The Versions tab: the published versions (restore any), and what changed between two of them or the draft. */
import { useEffect, useState } from "react";
import type { GraphDoc } from "../api/types";
import type { AppTabProps } from "../extensions";
import { T } from "../testids";
import { ComparePicker } from "./ComparePicker";
import { type GraphDiff, diffGraphs } from "./diff";
import { DiffCanvas } from "./DiffCanvas";
import { DiffList } from "./DiffList";
import { type GraphRef, refLabel, useVersions, type VersionSummary } from "./useVersions";
import { VersionList } from "./VersionList";
import "./versions.css";

interface Compared {
  before: GraphDoc;
  after: GraphDoc;
  diff: GraphDiff;
}

/** The newest version against the one before it, or (with one version) against the draft. */
function defaultPair(versions: VersionSummary[]): [GraphRef, GraphRef] | null {
  const [newest, previous] = versions;
  if (!newest) return null;
  return previous ? [previous.number, newest.number] : [newest.number, "draft"];
}

export function VersionsTab({ appId }: AppTabProps) {
  const { versions, total, error, graphOf } = useVersions(appId);
  const [pair, setPair] = useState<[GraphRef, GraphRef] | null>(null);
  const [compared, setCompared] = useState<Compared | null>(null);
  const [compareError, setCompareError] = useState("");

  useEffect(() => {
    if (versions && pair === null) setPair(defaultPair(versions));
  }, [versions, pair]);

  useEffect(() => {
    if (!pair) return;
    let alive = true;
    setCompareError("");
    Promise.all([graphOf(pair[0]), graphOf(pair[1])]).then(([before, after]) => {
      if (alive) setCompared({ before, after, diff: diffGraphs(before, after) });
    }).catch((e: unknown) => alive && setCompareError(e instanceof Error ? e.message : String(e)));
    return () => {
      alive = false;
    };
  }, [pair, graphOf]);

  if (error) return <p role="alert" className="error">{error}</p>;
  if (!versions) return <p role="status">Loading the versions…</p>;
  return (
    <div className="versions-tab tab-page" data-testid={T.versionsTab}>
      <section aria-labelledby="versions-title">
        <h2 id="versions-title">Published versions</h2>
        <VersionList appId={appId} versions={versions} total={total} />
      </section>
      {pair && (
        <section aria-labelledby="changes-title" className="changes">
          <h2 id="changes-title">Changes</h2>
          <ComparePicker versions={versions} from={pair[0]} to={pair[1]} onChange={(a, b) => setPair([a, b])} />
          {compareError && <p role="alert" className="error">{compareError}</p>}
          {compared && (
            <div className="changes-body">
              <DiffList diff={compared.diff} from={refLabel(pair[0])} to={refLabel(pair[1])} />
              <DiffCanvas before={compared.before} after={compared.after} diff={compared.diff} />
            </div>
          )}
        </section>
      )}
    </div>
  );
}
