/** Names for the API's schemas the builder uses (generated types live in schema.d.ts). */
import type { components } from "./schema";

type Schemas = components["schemas"];

export type Block = Schemas["BlockRead"];
export type Port = Schemas["BlockPort"];
export type Problem = Schemas["ProblemRead"];
export type AppSummary = Schemas["AppSummary"];
export type AppRead = Schemas["AppRead"];
export type Session = Schemas["SessionRead"];
export type ExportDocument = Schemas["ExportDocument"];
export type RunRead = Schemas["RunRead"];
export type RunSummary = Schemas["RunSummary"];
export type NodeTrace = Schemas["NodeTrace"];
export type RunGraph = Schemas["RunGraph"];

/** A node's ports as the server computed them from its config (dynamic ports included). */
export interface NodePorts {
  inputs: Port[];
  outputs: Port[];
}

/** The saved graph: what PUT /v1/apps/{id}/draft takes (UI fields such as `position` ride along). */
export interface GraphNode {
  id: string;
  type: string;
  config: Record<string, unknown>;
  position?: { x: number; y: number };
  [extra: string]: unknown;
}

export interface GraphEdge {
  source: string;
  source_port: string;
  target: string;
  target_port: string;
  [extra: string]: unknown;
}

export interface GraphDoc {
  schema_version?: 1;
  nodes: GraphNode[];
  edges: GraphEdge[];
  [extra: string]: unknown;
}

/** A validation report (POST /v1/graphs/validate, and the draft's GET and PUT answers). */
export interface Report {
  valid: boolean;
  problems: Problem[];
  /** Each node's ports computed from its config; absent from servers that predate it. */
  ports?: Record<string, NodePorts>;
}

export interface DraftRead extends Report {
  graph: GraphDoc;
  revision: number;
}
