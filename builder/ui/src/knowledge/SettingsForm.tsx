/** A knowledge base's settings: description, embedding model and chunking (a new model or chunking re-indexes). */
import { type FormEvent, useState } from "react";
import { api } from "../api/client";
import { describedBy, FormField, useFocusOnErrors } from "../common/FormField";
import { type FormErrors, formErrors, NO_ERRORS } from "../common/fieldErrors";
import { EMBEDDING_MODELS, type KnowledgeBase, settingsChanges } from "./documents";

const FIELDS = ["description", "embedding_model", "chunk_size", "chunk_overlap"] as const;

interface Props {
  kb: KnowledgeBase;
  /** The base as saved, and whether its documents were queued to be indexed again. */
  onSaved: (kb: KnowledgeBase, reindexing: boolean) => void;
}

export function SettingsForm({ kb, onSaved }: Props) {
  const [description, setDescription] = useState(kb.description);
  const [model, setModel] = useState(kb.embedding_model);
  const [size, setSize] = useState(String(kb.chunk_size));
  const [overlap, setOverlap] = useState(String(kb.chunk_overlap));
  const [errors, setErrors] = useState<FormErrors>(NO_ERRORS);
  const [said, setSaid] = useState("");
  const formRef = useFocusOnErrors(errors);
  const { body, reindexes } = settingsChanges(kb, { description, embedding_model: model, chunk_size: size, chunk_overlap: overlap });

  async function save(event: FormEvent) {
    event.preventDefault();
    setSaid("");
    const { data, error } = await api.PATCH("/v1/knowledge/{kb_id}", { params: { path: { kb_id: kb.id } }, body });
    if (!data) return setErrors(formErrors(error, FIELDS, "The settings could not be saved."));
    setErrors(NO_ERRORS);
    setSaid(reindexes ? "Saved: every document is being indexed again." : "Saved.");
    onSaved(data, reindexes);
  }

  const e = errors.fields;
  return (
    <details className="kb-settings">
      <summary>Settings</summary>
      <form ref={formRef} onSubmit={save} noValidate aria-label={`Settings of ${kb.name}`}>
        <FormField id="kb-set-description" label="Description" error={e.description}>
          <textarea {...describedBy("kb-set-description", e.description)} maxLength={2000} rows={2} value={description}
            onChange={(ev) => setDescription(ev.target.value)} />
        </FormField>
        <FormField id="kb-set-model" label="Embedding model" error={e.embedding_model}>
          <input {...describedBy("kb-set-model", e.embedding_model)} list="kb-set-models" value={model} spellCheck={false}
            autoComplete="off" onChange={(ev) => setModel(ev.target.value)} />
        </FormField>
        <datalist id="kb-set-models">{EMBEDDING_MODELS.map((m) => <option key={m} value={m} />)}</datalist>
        <FormField id="kb-set-size" label="Chunk size (characters)" error={e.chunk_size}>
          <input {...describedBy("kb-set-size", e.chunk_size)} type="number" inputMode="numeric" min={100} max={8000}
            step={50} value={size} onChange={(ev) => setSize(ev.target.value)} />
        </FormField>
        <FormField id="kb-set-overlap" label="Overlap (characters)" error={e.chunk_overlap}>
          <input {...describedBy("kb-set-overlap", e.chunk_overlap)} type="number" inputMode="numeric" min={0} max={2000}
            step={10} value={overlap} onChange={(ev) => setOverlap(ev.target.value)} />
        </FormField>
        {reindexes && <p className="warning">⚠ A new model or chunking indexes every document again.</p>}
        {errors.form && <p role="alert" className="error">{errors.form}</p>}
        <button type="submit" className="primary" disabled={Object.keys(body).length === 0}>Save settings</button>
        <p role="status" className="said">{said}</p>
      </form>
    </details>
  );
}
