/**
 * Where the app view is extended. The tabs beside "Editor" (runs, versions, deploy) and the
 * editor toolbar's extra buttons (such as "Test") are listed here, so adding a screen is one
 * entry and nothing registers itself by being imported.
 */
import type { ComponentType } from "react";
import { NodeTestButton } from "./testing/NodeTestButton";
import { TestButton } from "./testing/TestButton";
import { TestPanel } from "./testing/TestPanel";

export interface AppTabProps {
  appId: string;
}

export interface AppTab {
  /** The URL segment: /builder/apps/<id>/<id of the tab>. */
  id: string;
  label: string;
  Component: ComponentType<AppTabProps>;
}

/** Buttons drawn in the editor toolbar before "Publish" (they get the app id). */
export const toolbarItems: ComponentType<AppTabProps>[] = [TestButton];

/** Panels drawn at the top of the editor's side column, above the block settings (each hides itself when closed). */
export const sidePanels: ComponentType<AppTabProps>[] = [TestPanel];

export interface NodeActionProps {
  nodeId: string;
}

/** Buttons drawn in the selected block's settings panel (they get the node id). */
export const nodeActions: ComponentType<NodeActionProps>[] = [NodeTestButton];
