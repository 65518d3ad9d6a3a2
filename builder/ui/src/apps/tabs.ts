/** The app view's tabs, in order. Runs, versions and deploy screens replace the placeholders. */
import type { AppTab } from "../extensions";
import { Editor } from "../canvas/Editor";
import { RunsTab } from "../runs/RunsTab";
import { VersionsTab } from "../versions/VersionsTab";
import { ComingSoon } from "./ComingSoon";

export const appTabs: AppTab[] = [
  { id: "editor", label: "Editor", Component: Editor },
  { id: "runs", label: "Runs", Component: RunsTab },
  { id: "versions", label: "Versions", Component: VersionsTab },
  { id: "deploy", label: "Deploy", Component: ComingSoon },
];
