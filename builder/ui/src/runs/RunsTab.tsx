/**
 * The Runs tab: the app's runs (filtered by status and kind), the reviews waiting for a decision,
 * and one run opened as its graph with the trace (`?run=<id>`, so a run has an address).
 */
import { useEffect, useState } from "react";
import { Link, useSearch } from "wouter";
import type { AppTabProps } from "../extensions";
import { T } from "../testids";
import { pendingReviews } from "./api";
import { stopFollowing } from "./follow";
import { RunDetail } from "./RunDetail";
import { RunList } from "./RunList";
import { useRun } from "../store/run";
import "./runs.css";

function ReviewsWaiting({ appId }: { appId: string }) {
  const [count, setCount] = useState<number | null>(null);
  useEffect(() => {
    pendingReviews(appId).then(setCount).catch(() => setCount(null));
  }, [appId]);
  if (count === null) return null;
  return (
    <p className="reviews-waiting" data-testid={T.reviewsWaiting}>
      <a href="/review">{count === 0 ? "No reviews waiting" : `${count} review${count === 1 ? "" : "s"} waiting`}</a>
      {count > 0 && " for a decision in the review queue"}
    </p>
  );
}

export function RunsTab({ appId }: AppTabProps) {
  const runId = new URLSearchParams(useSearch()).get("run");
  // Leaving the tab stops following a live run and takes its statuses away.
  useEffect(() => () => {
    stopFollowing();
    useRun.getState().clear();
  }, []);

  return (
    <div className="runs-tab tab-page" data-testid={T.runsTab}>
      <div className="runs-top">
        {runId ? <Link href={`/apps/${appId}/runs`}>← All runs</Link> : null}
        <ReviewsWaiting appId={appId} />
      </div>
      {runId ? <RunDetail key={runId} appId={appId} runId={runId} /> : <RunList appId={appId} />}
    </div>
  );
}
