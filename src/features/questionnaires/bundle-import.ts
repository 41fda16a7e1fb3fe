// A FHIR Bundle holding one Questionnaire and the ValueSets and CodeSystems it references, turned
// into one self-contained Questionnaire: the referenced ValueSets are folded into `contained` and
// each answerValueSet that named one is rewritten to `#id`, so the stored definition never
// depends on a terminology server. CodeSystems whose codes the questionnaire or a folded ValueSet
// uses are folded too (their concepts may carry scores), and listed in the SDC
// referencesContained extension, because FHIR wants every contained resource referenced.
// Entries nothing refers to are left out for the same reason. Pure: no I/O.
import type { ErrorDetail } from '../../errors.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

export const REFERENCES_CONTAINED = 'http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-referencesContained';

export type BundleImport =
  | { ok: true; questionnaire: Obj; /** JSON pointer of the Questionnaire in the bundle, to place its problems */ at: string }
  | { ok: false; problems: ErrorDetail[] };

interface Entry {
  resource: Obj;
  index: number;
  /** Every name the bundle gives the resource: its canonical url (and url|version), fullUrl, request url. */
  names: string[];
}

export function importBundle(bundle: Obj): BundleImport {
  const problems: ErrorDetail[] = [];
  const entries: Entry[] = [];
  arr(bundle.entry).forEach((e, index) => {
    if (!isObj(e) || !isObj(e.resource)) return problems.push({ path: `/entry/${index}/resource`, message: 'is required' });
    const r = e.resource;
    const names = [r.url, typeof r.url === 'string' && typeof r.version === 'string' ? `${r.url}|${r.version}` : undefined, e.fullUrl];
    if (isObj(e.request)) names.push(e.request.url, typeof r.id === 'string' ? `${String(r.resourceType)}/${r.id}` : undefined);
    entries.push({ resource: r, index, names: names.filter((n): n is string => typeof n === 'string') });
  });

  const questionnaires = entries.filter((e) => e.resource.resourceType === 'Questionnaire');
  if (questionnaires.length !== 1) {
    problems.push({ path: '/entry', message: `must hold exactly one Questionnaire (found ${questionnaires.length})` });
  }
  for (const e of entries) {
    if (!['Questionnaire', 'ValueSet', 'CodeSystem'].includes(String(e.resource.resourceType))) {
      problems.push({ path: `/entry/${e.index}/resource/resourceType`, message: 'only ValueSet and CodeSystem resources may accompany the Questionnaire' });
    }
  }
  if (problems.length > 0 || !questionnaires[0]) return { ok: false, problems };

  const source = questionnaires[0];
  const q = structuredClone(source.resource);
  const fold = new Folder(q, entries);
  rewriteValueSets(q.item, fold);
  fold.codeSystems();
  if (fold.problems.length > 0) return { ok: false, problems: fold.problems };
  return { ok: true, questionnaire: q, at: `/entry/${source.index}/resource` };
}

function rewriteValueSets(items: unknown, fold: Folder): void {
  for (const item of arr(items)) {
    if (!isObj(item)) continue;
    if (typeof item.answerValueSet === 'string' && !item.answerValueSet.startsWith('#')) {
      const id = fold.valueSet(item.answerValueSet);
      if (id) item.answerValueSet = `#${id}`;
    }
    rewriteValueSets(item.item, fold);
  }
}

/** Adds bundle resources to the questionnaire's `contained`, each once, under an id not yet taken. */
class Folder {
  readonly problems: ErrorDetail[] = [];
  private readonly contained: unknown[];
  private readonly taken: Set<string>;
  private readonly folded = new Map<Entry, string>();

  constructor(
    private readonly q: Obj,
    private readonly entries: Entry[],
  ) {
    this.contained = Array.isArray(q.contained) ? q.contained : [];
    this.taken = new Set(this.contained.flatMap((c) => (isObj(c) && typeof c.id === 'string' ? [c.id] : [])));
  }

  /** The contained id of the bundle's ValueSet named `ref`, or undefined when the bundle has none. */
  valueSet(ref: string): string | undefined {
    const entry = this.find('ValueSet', ref) ?? this.find('ValueSet', ref.split('|')[0]!);
    return entry && this.add(entry);
  }

  /** Folds the CodeSystems whose codes the questionnaire (folded ValueSets included) uses. */
  codeSystems(): void {
    const systems = new Set<string>();
    collectSystems(this.q, systems);
    const ids = this.entries
      .filter((e) => e.resource.resourceType === 'CodeSystem' && typeof e.resource.url === 'string' && systems.has(e.resource.url))
      .map((e) => this.add(e));
    if (ids.length === 0) return;
    const extension = Array.isArray(this.q.extension) ? this.q.extension : (this.q.extension = []);
    for (const id of ids) if (id) extension.push({ url: REFERENCES_CONTAINED, valueReference: { reference: `#${id}` } });
  }

  private find(type: string, name: string): Entry | undefined {
    return this.entries.find((e) => e.resource.resourceType === type && e.names.includes(name));
  }

  private add(entry: Entry): string | undefined {
    const known = this.folded.get(entry);
    if (known) return known;
    if (entry.resource.contained !== undefined) {
      this.problems.push({ path: `/entry/${entry.index}/resource/contained`, message: 'a resource folded into the Questionnaire cannot contain resources itself' });
      return undefined;
    }
    const base = typeof entry.resource.id === 'string' ? entry.resource.id : String(entry.resource.resourceType).toLowerCase();
    let id = base;
    for (let n = 2; this.taken.has(id); n++) id = `${base}-${n}`;
    this.taken.add(id);
    this.folded.set(entry, id);
    this.contained.push({ ...entry.resource, id });
    this.q.contained = this.contained;
    return id;
  }
}

/** Every coding system the resource mentions (answer options, conditions, value set includes). */
function collectSystems(v: unknown, out: Set<string>): void {
  if (Array.isArray(v)) return v.forEach((x) => collectSystems(x, out));
  if (!isObj(v)) return;
  if (typeof v.system === 'string') out.add(v.system);
  for (const x of Object.values(v)) collectSystems(x, out);
}
