/**
 * The one node type of the canvas: any block, drawn from its catalogue entry and its ports.
 * One handle per port (handle id = port name); problems show as a badge with a count, an outline
 * and an icon (never colour alone); the run store's entry for the node adds its run status.
 */
import { Handle, type NodeProps, Position, useUpdateNodeInternals } from "@xyflow/react";
import { memo, useEffect, useRef } from "react";
import type { NodePorts, Port, Problem } from "../api/types";
import { useGraph } from "../store/graph";
import { namesPort, useProblems } from "../store/problems";
import { NodeRunLine } from "../runs/NodeRunLine";
import { useRun } from "../store/run";
import { T } from "../testids";
import type { BlockFlowNode } from "./types";

const NO_PROBLEMS: Problem[] = [];

function PortRow({ port, side, problems }: { port: Port; side: "in" | "out"; problems: Problem[] }) {
  const own = problems.filter((p) => namesPort(p, port.name, side));
  return (
    <li className={`port port-${side}${own.length ? " has-problem" : ""}`} title={port.description || undefined}>
      <Handle type={side === "in" ? "target" : "source"} position={side === "in" ? Position.Left : Position.Right}
        id={port.name} />
      <span className="port-name">{port.name}{side === "in" && port.required ? <span aria-label="required">*</span> : null}</span>
      <span className="port-type">{port.type}</span>
      {own.length > 0 && (
        <span className="port-problem" role="img" aria-label={own.map((p) => p.message).join("; ")}
          title={own.map((p) => p.message).join("\n")} data-testid={T.portProblem}>⚠</span>
      )}
    </li>
  );
}

function usePortsChanged(id: string, ports: NodePorts | undefined): void {
  const update = useUpdateNodeInternals();
  const key = JSON.stringify(ports);
  const first = useRef(true);
  useEffect(() => {
    // React Flow measures handles on mount; afterwards, a port added or removed must be re-measured.
    if (first.current) first.current = false;
    else update(id);
  }, [id, key, update]);
}

function BlockNodeView({ id, data, selected }: NodeProps<BlockFlowNode>) {
  const block = useGraph((s) => s.blocks[data.blockType]);
  const ports = useGraph((s) => s.ports[id]) ?? (block ? { inputs: block.inputs, outputs: block.outputs } : undefined);
  const problems = useProblems((s) => s.byNode[id]) ?? NO_PROBLEMS;
  const run = useRun((s) => s.nodes[id]);
  usePortsChanged(id, ports);

  const count = problems.length;
  const classes = ["block-node", count ? "has-problems" : "", selected ? "is-selected" : "", run ? `run-${run.status}` : ""];
  return (
    <div className={classes.filter(Boolean).join(" ")} data-block-type={data.blockType}>
      <div className="block-head">
        <span className="block-title">{block?.title ?? data.blockType}</span>
        <span className="block-id">{id}</span>
        {count > 0 && (
          <span className="problem-badge" data-testid={T.nodeBadge} role="img"
            aria-label={`${count} problem${count === 1 ? "" : "s"}`} title={problems.map((p) => p.message).join("\n")}>
            ⚠ {count}
          </span>
        )}
      </div>
      {!block && <p className="block-unknown">Unknown block type {data.blockType}</p>}
      <div className="block-ports">
        <ul className="ports-in" aria-label="Inputs">
          {ports?.inputs.map((p) => <PortRow key={p.name} port={p} side="in" problems={problems} />)}
        </ul>
        <ul className="ports-out" aria-label="Outputs">
          {ports?.outputs.map((p) => <PortRow key={p.name} port={p} side="out" problems={problems} />)}
        </ul>
      </div>
      {run && <NodeRunLine run={run} />}
    </div>
  );
}

export const BlockNode = memo(BlockNodeView);
