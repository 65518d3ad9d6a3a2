/** Two selects: compare this graph (a version or the draft) with that one. */
import { T } from "../testids";
import { type GraphRef, refLabel, type VersionSummary } from "./useVersions";

interface Props {
  versions: VersionSummary[];
  from: GraphRef;
  to: GraphRef;
  onChange: (from: GraphRef, to: GraphRef) => void;
}

const parse = (value: string): GraphRef => (value === "draft" ? "draft" : Number(value));

function Choice({ id, label, value, versions, onPick, testId }: {
  id: string; label: string; value: GraphRef; versions: VersionSummary[]; onPick: (r: GraphRef) => void; testId: string;
}) {
  return (
    <span className="compare-choice">
      <label htmlFor={id}>{label}</label>
      <select id={id} value={String(value)} onChange={(e) => onPick(parse(e.target.value))} data-testid={testId}>
        <option value="draft">The draft</option>
        {versions.map((v) => <option key={v.number} value={v.number}>{`Version ${v.number}${v.note ? `: ${v.note.slice(0, 40)}` : ""}`}</option>)}
      </select>
    </span>
  );
}

export function ComparePicker({ versions, from, to, onChange }: Props) {
  return (
    <div className="compare-picker" role="group" aria-label="Graphs to compare">
      <Choice id="compare-from" label="Compare" value={from} versions={versions} onPick={(r) => onChange(r, to)} testId={T.compareFrom} />
      <Choice id="compare-to" label="with" value={to} versions={versions} onPick={(r) => onChange(from, r)} testId={T.compareTo} />
      <button type="button" onClick={() => onChange(to, from)} aria-label={`Swap: compare ${refLabel(to)} with ${refLabel(from)}`}>Swap</button>
    </div>
  );
}
