/** Create a knowledge base (name, description, chunking, embedding model) and open it. */
import { type FormEvent, useState } from "react";
import { useLocation } from "wouter";
import { api } from "../api/client";
import { describedBy, FormField, useFocusOnErrors } from "../common/FormField";
import { type FormErrors, formErrors, NO_ERRORS } from "../common/fieldErrors";
import { T } from "../testids";
import { EMBEDDING_MODELS as MODELS } from "./documents";

const FIELDS = ["name", "description", "embedding_model", "chunk_size", "chunk_overlap"] as const;
const NAME_HINT = "Letters, digits, spaces, dots, dashes and underscores. Apps name it in their Retrieve block.";
const MODEL_HINT = "The model that embeds every chunk. Changing it later re-indexes every document.";
const SIZE_HINT = "About this many characters a chunk (100 to 8000): smaller chunks give more precise passages.";
const OVERLAP_HINT = "Characters repeated between neighbouring chunks, so a sentence cut in two is found whole.";

export function CreateKnowledgeForm() {
  const [, navigate] = useLocation();
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [model, setModel] = useState(MODELS[0] as string);
  const [size, setSize] = useState("800");
  const [overlap, setOverlap] = useState("100");
  const [errors, setErrors] = useState<FormErrors>(NO_ERRORS);
  const [busy, setBusy] = useState(false);
  const formRef = useFocusOnErrors(errors);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    const { data, error } = await api.POST("/v1/knowledge", {
      body: { name: name.trim(), description, embedding_model: model.trim(), chunk_size: Number(size),
        chunk_overlap: Number(overlap) },
    }).finally(() => setBusy(false));
    if (data) navigate(`/knowledge/${data.id}`);
    else setErrors(formErrors(error, FIELDS, "The knowledge base could not be created."));
  }

  const e = errors.fields;
  return (
    <form ref={formRef} className="kb-create" onSubmit={submit} noValidate aria-labelledby="kb-create-title"
      data-testid={T.createKnowledge}>
      <h2 id="kb-create-title">New knowledge base</h2>
      <FormField id="kb-name" label="Name" hint={NAME_HINT} error={e.name}>
        <input {...describedBy("kb-name", e.name, NAME_HINT)} required maxLength={100} value={name} autoComplete="off"
          onChange={(ev) => setName(ev.target.value)} />
      </FormField>
      <FormField id="kb-description" label="Description" error={e.description}>
        <textarea {...describedBy("kb-description", e.description)} maxLength={2000} rows={2} value={description}
          onChange={(ev) => setDescription(ev.target.value)} />
      </FormField>
      <FormField id="kb-model" label="Embedding model" hint={MODEL_HINT} error={e.embedding_model}>
        <input {...describedBy("kb-model", e.embedding_model, MODEL_HINT)} list="kb-models" value={model}
          spellCheck={false} autoComplete="off" onChange={(ev) => setModel(ev.target.value)} />
      </FormField>
      <datalist id="kb-models">{MODELS.map((m) => <option key={m} value={m} />)}</datalist>
      <fieldset className="kb-chunking">
        <legend>Chunking</legend>
        <FormField id="kb-chunk-size" label="Chunk size (characters)" hint={SIZE_HINT} error={e.chunk_size}>
          <input {...describedBy("kb-chunk-size", e.chunk_size, SIZE_HINT)} type="number" inputMode="numeric" min={100}
            max={8000} step={50} value={size} onChange={(ev) => setSize(ev.target.value)} />
        </FormField>
        <FormField id="kb-chunk-overlap" label="Overlap (characters)" hint={OVERLAP_HINT} error={e.chunk_overlap}>
          <input {...describedBy("kb-chunk-overlap", e.chunk_overlap, OVERLAP_HINT)} type="number" inputMode="numeric"
            min={0} max={2000} step={10} value={overlap} onChange={(ev) => setOverlap(ev.target.value)} />
        </FormField>
      </fieldset>
      {errors.form && <p role="alert" className="error">{errors.form}</p>}
      <button type="submit" className="primary" disabled={busy || !name.trim()}>Create knowledge base</button>
    </form>
  );
}
