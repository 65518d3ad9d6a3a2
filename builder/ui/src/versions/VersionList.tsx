/** The published versions, newest first: number, note, who published it and when; restore each. */
import { T } from "../testids";
import { actorLabel, localTime } from "./format";
import { RestoreButton } from "./RestoreButton";
import type { VersionSummary } from "./useVersions";

interface Props {
  appId: string;
  versions: VersionSummary[];
  total: number;
}

export function VersionList({ appId, versions, total }: Props) {
  if (versions.length === 0) {
    return <p>Nothing is published yet. Publish the draft from the editor's toolbar (with a note of what changed).</p>;
  }
  return (
    <>
      <table className="version-list" data-testid={T.versionList}>
        <caption className="visually-hidden">Published versions, newest first</caption>
        <thead>
          <tr><th scope="col">Version</th><th scope="col">Note</th><th scope="col">Published by</th><th scope="col">When</th><th scope="col"><span className="visually-hidden">Actions</span></th></tr>
        </thead>
        <tbody>
          {versions.map((v) => (
            <tr key={v.number} data-testid={T.versionRow} data-version={v.number}>
              <th scope="row">{v.number}</th>
              <td className="version-note">{v.note || <span className="muted">(no note)</span>}</td>
              <td>{actorLabel(v.created_by)}</td>
              <td><time dateTime={v.created_at}>{localTime(v.created_at)}</time></td>
              <td><RestoreButton appId={appId} number={v.number} /></td>
            </tr>
          ))}
        </tbody>
      </table>
      {total > versions.length && <p className="muted">The {versions.length} newest of {total} versions.</p>}
    </>
  );
}
