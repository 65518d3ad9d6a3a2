/** The Deploy tab: the ways a published app is reached (share links, SMS, webhook, schedule, MCP tool) and its policies. */
import type { AppTabProps } from "../extensions";
import { T } from "../testids";
import { McpToolSection } from "./McpToolSection";
import { PoliciesSection } from "./PoliciesSection";
import { ScheduleSection } from "./ScheduleSection";
import { ShareLinks } from "./ShareLinks";
import { SmsSection } from "./SmsSection";
import { WebhookSection } from "./WebhookSection";
import "./deploy.css";

export function DeployTab({ appId }: AppTabProps) {
  return (
    <div className="deploy-tab tab-page" data-testid={T.deployTab}>
      <nav aria-label="Deploy sections" className="deploy-nav">
        <a href="#shares-title">Share links</a> <a href="#sms-title">SMS</a> <a href="#webhook-title">Webhook</a>{" "}
        <a href="#schedule-title">Schedule</a> <a href="#mcp-title">MCP tool</a> <a href="#policies-title">Policies</a>
      </nav>
      <ShareLinks appId={appId} />
      <SmsSection appId={appId} />
      <WebhookSection appId={appId} />
      <ScheduleSection appId={appId} />
      <McpToolSection appId={appId} />
      <PoliciesSection appId={appId} />
    </div>
  );
}
