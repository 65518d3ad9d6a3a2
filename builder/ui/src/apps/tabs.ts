/** The app view's tabs, in order. */
import type { AppTab } from "../extensions";
import { Editor } from "../canvas/Editor";
import { RunsTab } from "../runs/RunsTab";
import { DeployTab } from "../deploy/DeployTab";
import { VersionsTab } from "../versions/VersionsTab";

export const appTabs: AppTab[] = [
  { id: "editor", label: "Editor", Component: Editor },
  { id: "runs", label: "Runs", Component: RunsTab },
  { id: "versions", label: "Versions", Component: VersionsTab },
  { id: "deploy", label: "Deploy", Component: DeployTab },
];
