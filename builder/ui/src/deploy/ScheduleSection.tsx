/** The Schedule section: the published schedule with its next run, stop it; set cron and time zone in the draft. */
import { type FormEvent, useCallback, useEffect, useState } from "react";
import { api } from "../api/client";
import { errorMessage } from "../api/errors";
import { ConfirmButton } from "../common/ConfirmButton";
import { describedBy, FormField, useFocusOnErrors } from "../common/FormField";
import { type FormErrors, formErrors, NO_ERRORS } from "../common/fieldErrors";
import { localTime, timeInBoth } from "../versions/format";
import { T } from "../testids";
import type { Schedule } from "./types";

const CRON_HINT = "minute hour day-of-month month day-of-week, such as 0 9 * * 1-5 (9:00 on weekdays), or @hourly, @daily, @weekly.";
const ZONE_HINT = "An IANA time zone, such as Europe/Paris: the expression is read there, summer and winter.";
// Where the browser knows them, the time zones are offered as suggestions (the server checks the name).
const ZONES: string[] = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];

function Published({ schedule, onStop }: { schedule: Schedule; onStop: () => Promise<string> }) {
  const p = schedule.published;
  if (!p) return <p>The published version is not started by a schedule.</p>;
  return (
    <div className="published-schedule">
      <p>Version {p.version} runs on <code>{p.cron}</code> in {p.timezone}.{" "}
        {p.active && p.next_at ? <strong data-next-run>Next run: {timeInBoth(p.next_at, p.timezone)}.</strong>
          : <strong>Stopped: publishing a version starts its schedule again.</strong>}</p>
      {p.last_tick_at && <p className="muted">Last run: {localTime(p.last_tick_at)}.</p>}
      {p.active && (
        <ConfirmButton label="Stop schedule" title="Stop the schedule?" onConfirm={onStop}>
          <p>No more scheduled runs until a version is published again.</p>
        </ConfirmButton>
      )}
    </div>
  );
}

export function ScheduleSection({ appId }: { appId: string }) {
  const [schedule, setSchedule] = useState<Schedule | null>(null);
  const [cron, setCron] = useState("");
  const [timezone, setTimezone] = useState(() => Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC");
  const [errors, setErrors] = useState<FormErrors>(NO_ERRORS);
  const formRef = useFocusOnErrors(errors);
  const [said, setSaid] = useState("");
  const path = { params: { path: { app_id: appId } } };

  const show = useCallback((s: Schedule) => {
    setSchedule(s);
    const current = s.draft ?? s.published;
    if (current) {
      setCron(current.cron);
      setTimezone(current.timezone);
    }
  }, []);

  useEffect(() => {
    api.GET("/v1/apps/{app_id}/schedule", { params: { path: { app_id: appId } } }).then(({ data, error }) => {
      if (data) show(data);
      else setErrors({ fields: {}, form: errorMessage(error, "The schedule could not be loaded.") });
    }).catch((e: unknown) => setErrors({ fields: {}, form: errorMessage(e) }));
  }, [appId, show]);

  async function save(event: FormEvent) {
    event.preventDefault();
    setSaid("");
    const { data, error } = await api.PUT("/v1/apps/{app_id}/schedule", { ...path, body: { cron: cron.trim(), timezone: timezone.trim() } });
    if (!data) return setErrors(formErrors(error, ["cron", "timezone"], "The schedule could not be saved."));
    setErrors(NO_ERRORS);
    show(data);
    setSaid("Saved in the draft. Publish the draft from the editor to run on it.");
  }

  async function stop(): Promise<string> {
    const { data, error } = await api.DELETE("/v1/apps/{app_id}/schedule", path);
    if (!data) return errorMessage(error, "Stopping failed.");
    show(data);
    return "";
  }

  const draft = schedule?.draft;
  return (
    <section className="deploy-section" aria-labelledby="schedule-title" data-testid={T.scheduleSection}>
      <h2 id="schedule-title">Schedule</h2>
      {schedule && <Published schedule={schedule} onStop={stop} />}
      {schedule && schedule.draft_trigger && schedule.draft_trigger !== "trigger.schedule" ? (
        <p>The draft starts with {schedule.draft_trigger}. To run the app on a schedule, replace that trigger with
          trigger.schedule in the editor.</p>
      ) : (
        <form ref={formRef} className="deploy-form" onSubmit={save} noValidate aria-labelledby="schedule-form-title">
          <h3 id="schedule-form-title">{schedule?.draft ? "Schedule in the draft" : "Run on a schedule"}</h3>
          <FormField id="schedule-cron" label="Cron expression" hint={CRON_HINT} error={errors.fields.cron}>
            <input {...describedBy("schedule-cron", errors.fields.cron, CRON_HINT)} value={cron} spellCheck={false}
              autoComplete="off" onChange={(e) => setCron(e.target.value)} />
          </FormField>
          <FormField id="schedule-timezone" label="Time zone" hint={ZONE_HINT} error={errors.fields.timezone}>
            <input {...describedBy("schedule-timezone", errors.fields.timezone, ZONE_HINT)} value={timezone} list="time-zones"
              spellCheck={false} autoComplete="off" onChange={(e) => setTimezone(e.target.value)} />
          </FormField>
          <datalist id="time-zones">{ZONES.map((z) => <option key={z} value={z} />)}</datalist>
          {errors.form && <p role="alert" className="error">{errors.form}</p>}
          <button type="submit" className="primary" disabled={!cron.trim()}>Save schedule to the draft</button>
          <p role="status" className="said">{said}</p>
          {draft?.next_at && (
            <p>In the draft: would run next at <strong data-draft-next-run>{timeInBoth(draft.next_at, draft.timezone)}</strong>.</p>
          )}
        </form>
      )}
    </section>
  );
}
