/** The Policies section: the organization's policies, each attached to this app or not. */
import { useCallback, useEffect, useState } from "react";
import { api } from "../api/client";
import { errorMessage } from "../api/errors";
import { T } from "../testids";
import type { AttachedPolicy, Policy } from "./types";

export function PoliciesSection({ appId }: { appId: string }) {
  const [policies, setPolicies] = useState<Policy[] | null>(null);
  const [attached, setAttached] = useState<AttachedPolicy[]>([]);
  const [error, setError] = useState("");
  const [said, setSaid] = useState("");
  const [busy, setBusy] = useState(false);

  const load = useCallback(async () => {
    const [all, own] = await Promise.all([
      api.GET("/v1/policies", { params: { query: { limit: 100 } } }),
      api.GET("/v1/apps/{app_id}/policies", { params: { path: { app_id: appId } } }),
    ]);
    if (all.data) setPolicies(all.data.items);
    if (own.data) setAttached(own.data.items);
    if (!all.data || !own.data) setError(errorMessage(all.error ?? own.error, "The policies could not be loaded."));
  }, [appId]);

  useEffect(() => {
    void load();
  }, [load]);

  async function change(policy: Policy, attach: boolean) {
    const ids = attached.map((a) => a.policy_id).filter((id): id is string => Boolean(id) && id !== policy.id);
    setBusy(true);
    setError("");
    const { data, error: failure } = await api.PUT("/v1/apps/{app_id}/policies", {
      params: { path: { app_id: appId } }, body: { policy_ids: attach ? [...ids, policy.id] : ids },
    });
    setBusy(false);
    if (!data) return setError(errorMessage(failure, "The policies could not be changed."));
    setAttached(data.items);
    setSaid(`${attach ? "Attached" : "Detached"} ${policy.name}.`);
  }

  const isAttached = (p: Policy) => attached.some((a) => a.policy_id === p.id);
  return (
    <section className="deploy-section" aria-labelledby="policies-title" data-testid={T.policiesSection}>
      <h2 id="policies-title">Policies</h2>
      <p className="muted">Attached policies check every llm.prompt input and output of the app: in test runs of the
        draft at once, in published runs from the next publish (which pins the policies' versions).</p>
      {error && <p role="alert" className="error">{error}</p>}
      <p role="status" className="said">{said}</p>
      {policies && policies.length === 0 && <p>The organization has no policies yet (they are made with <code>POST /v1/policies</code>).</p>}
      {policies && policies.length > 0 && (
        <ul className="policy-list">
          {policies.map((p) => {
            const on = isAttached(p);
            return (
              <li key={p.id} className="policy-item" data-testid={T.policyItem} data-policy={p.name} data-attached={on}>
                <div>
                  <strong>{p.name}</strong> <span className="muted">version {p.version}</span>
                  <span className="state-tag">{on ? "Attached" : "Not attached"}</span>
                  {p.description && <p className="muted">{p.description}</p>}
                </div>
                <button type="button" disabled={busy} onClick={() => void change(p, !on)}
                  aria-label={`${on ? "Detach" : "Attach"} ${p.name}`}>{on ? "Detach" : "Attach"}</button>
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
}
