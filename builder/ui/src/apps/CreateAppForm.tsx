/** Create an app (name and description) and open it. */
import { type FormEvent, useState } from "react";
import { useLocation } from "wouter";
import { api, errorMessage } from "../api/client";
import { T } from "../testids";

export function CreateAppForm() {
  const [, navigate] = useLocation();
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [error, setError] = useState("");

  async function submit(event: FormEvent) {
    event.preventDefault();
    setError("");
    const { data, error: failure } = await api.POST("/v1/apps", { body: { name: name.trim(), description } });
    if (data) navigate(`/apps/${data.id}`);
    else setError(errorMessage(failure, "The app could not be created."));
  }

  return (
    <form className="create-app" onSubmit={submit} data-testid={T.createApp} aria-labelledby="create-app-title">
      <h2 id="create-app-title">New app</h2>
      <label htmlFor="new-app-name">Name</label>
      <input id="new-app-name" required maxLength={200} value={name} onChange={(e) => setName(e.target.value)} />
      <label htmlFor="new-app-description">Description</label>
      <textarea id="new-app-description" maxLength={5000} rows={2} value={description}
        onChange={(e) => setDescription(e.target.value)} />
      {error && <p role="alert" className="error">{error}</p>}
      <button type="submit" disabled={!name.trim()}>Create app</button>
    </form>
  );
}
