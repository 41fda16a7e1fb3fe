// Invalid definitions over real HTTP: each rule refused with 400 VALIDATION_FAILED naming the
// path, several problems listed together, and nothing created. Also what the rules do accept.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, expectError, type Client } from '../../../test/helpers/http.js';
import { simpleQuestionnaire } from '../../../test/helpers/questionnaires.js';
import { startServer, storageModes, type TestServer } from '../../../test/helpers/server.js';

const Q = '/v1/questionnaires';
type Def = Record<string, any>;
/** simpleQuestionnaire() changed by fn (items: 0 smoker boolean, 1 mood choice, 2 packs integer, 3 contact group). */
const variant = (fn: (q: Def) => void): Def => {
  const q = simpleQuestionnaire();
  fn(q);
  return q;
};
const contained = [
  { resourceType: 'ValueSet', id: 'moods', url: 'https://forms.example.org/vs/moods', compose: { include: [{ system: 'urn:test:mood', concept: [{ code: 'good' }, { code: 'bad' }] }] } },
  { resourceType: 'CodeSystem', id: 'cs', url: 'urn:test:mood', content: 'complete', concept: [{ code: 'good' }] },
  { resourceType: 'ValueSet', id: 'empty', compose: { include: [{ system: 'urn:test:mood', filter: [{ property: 'x', op: '=', value: 'y' }] }] } },
];

// [what, definition, [path, message pattern][] — exactly the problems expected]
const CASES: [string, Def, [string, RegExp][]][] = [
  ['wrong resourceType', variant((q) => (q.resourceType = 'Patient')), [['/resourceType', /Questionnaire/]]],
  ['missing and unknown status', variant((q) => (q.status = 'unknown')), [['/status', /draft, active, retired/]]],
  ['unknown item type', variant((q) => (q.item[0].type = 'attachment')), [['/item/0/type', /must be one of: group, display/]]],
  ['duplicate linkIds anywhere in the tree', variant((q) => (q.item[3].item[0].linkId = 'mood')), [['/item/3/item/0/linkId', /repeats the linkId of \/item\/1/]]],
  ['enableWhen on a missing item', variant((q) => (q.item[2].enableWhen[0].question = 'smoking')), [['/item/2/enableWhen/0/question', /no item/]]],
  ['enableWhen answer of another type (boolean item)', variant((q) => (q.item[2].enableWhen = [{ question: 'smoker', operator: '=', answerString: 'yes' }])), [['/item/2/enableWhen/0/answerString', /boolean.*answerBoolean/]]],
  ['enableWhen answer of another type (coded choice)', variant((q) => (q.item[2].enableWhen = [{ question: 'mood', operator: '=', answerInteger: 1 }])), [['/item/2/enableWhen/0/answerInteger', /answerCoding/]]],
  ['enableWhen answer of another type (integer)', variant((q) => (q.item.push({ linkId: 'x', type: 'string', enableWhen: [{ question: 'packs', operator: '>', answerDecimal: 1.5 }] }))), [['/item/4/enableWhen/0/answerDecimal', /answerInteger/]]],
  ['exists with a non-boolean answer', variant((q) => (q.item[2].enableWhen = [{ question: 'smoker', operator: 'exists', answerString: 'x' }])), [['/item/2/enableWhen/0/answerString', /exists takes answerBoolean/]]],
  ['enableWhen without an answer, and with two', variant((q) => (q.item[2].enableWhen = [{ question: 'smoker', operator: '=' }, { question: 'smoker', operator: '=', answerBoolean: true, answerString: 'y' }], (q.item[2].enableBehavior = 'any'))), [['/item/2/enableWhen/0', /needs one answer/], ['/item/2/enableWhen/1/answerString', /only one/]]],
  ['an unsupported operator and answer type', variant((q) => (q.item[2].enableWhen = [{ question: 'smoker', operator: 'contains', answerReference: { reference: 'x' } }])), [['/item/2/enableWhen/0/operator', /must be one of: exists/], ['/item/2/enableWhen/0/answerReference', /not a supported answer/]]],
  ['an ordering operator on a boolean', variant((q) => (q.item[2].enableWhen[0].operator = '>=')), [['/item/2/enableWhen/0/operator', /numbers, dates/]]],
  ['enableBehavior missing with several enableWhen', variant((q) => q.item[2].enableWhen.push({ question: 'mood', operator: 'exists', answerBoolean: true })), [['/item/2/enableBehavior', /more than one enableWhen/]]],
  ['enableWhen on a group', variant((q) => (q.item[2].enableWhen = [{ question: 'contact', operator: 'exists', answerBoolean: true }])), [['/item/2/enableWhen/0/question', /group item, which has no answer/]]],
  ['enableWhen chains that loop', variant((q) => (q.item[0].enableWhen = [{ question: 'packs', operator: 'exists', answerBoolean: true }])), [['/item/2/enableWhen', /depends on itself through enableWhen \(smoker → packs → smoker\)/]]],
  ['choice without answerOption or answerValueSet', variant((q) => { delete q.item[1].answerOption; q.item.push({ linkId: 'oc', type: 'open-choice' }); }), [['/item/1/answerOption', /choice item needs/], ['/item/4/answerOption', /an open-choice item needs/]]],
  ['answerValueSet not a contained ValueSet', variant((q) => {
    q.contained = contained;
    delete q.item[1].answerOption;
    q.item[1].answerValueSet = '#nope';
    q.item.push({ linkId: 'a', type: 'choice', answerValueSet: '#cs' }, { linkId: 'b', type: 'choice', answerValueSet: 'http://loinc.org/vs/LL358-3' }, { linkId: 'c', type: 'choice', answerValueSet: '#empty' });
  }), [['/item/1/answerValueSet', /no contained/], ['/item/4/answerValueSet', /CodeSystem, not a ValueSet/], ['/item/5/answerValueSet', /Bundle/], ['/item/6/answerValueSet', /lists no codes/]]],
  ['answerOption and answerValueSet together, and answerValueSet on a string', variant((q) => {
    q.contained = contained;
    q.item[1].answerValueSet = '#moods';
    q.item.push({ linkId: 's', type: 'string', answerValueSet: '#moods' });
  }), [['/item/1/answerValueSet', /cannot be combined/], ['/item/4/answerValueSet', /only choice and open-choice/]]],
  ['a group without child items', variant((q) => (q.item[3].item = [])), [['/item/3/item', /group needs at least one child/]]],
  ['display items with required, answers or children', variant((q) => q.item.push({ linkId: 'd', type: 'display', text: 'Note', required: true, repeats: true, answerOption: [{ valueString: 'x' }], item: [{ linkId: 'd.1', type: 'string' }] })), [['/item/4/required', /display/], ['/item/4/repeats', /display/], ['/item/4/answerOption', /display item cannot restrict/], ['/item/4/item', /display item cannot have child/]]],
  ['maxLength on non-text types', variant((q) => { q.item[2].maxLength = 3; q.item[0].maxLength = 1; }), [['/item/0/maxLength', /string, text and open-choice/], ['/item/2/maxLength', /string, text and open-choice/]]],
  ['answer options that do not fit', variant((q) => {
    q.item[1].answerOption.push({ valueCoding: { system: 'urn:test:mood', code: 'good' } }, { valueTime: '10:00:00' }, { valueString: 'a', valueInteger: 1 }, {});
    q.item[2].answerOption = [{ valueString: 'one' }];
    q.item[0].answerOption = [{ valueCoding: { code: 'y' } }];
    q.item[1].answerOption[0].extension[0] = { url: 'http://hl7.org/fhir/StructureDefinition/itemWeight', valueString: 'heavy' };
  }), [
    ['/item/1/answerOption/2', /repeats an earlier option/],
    ['/item/1/answerOption/3/valueTime', /not a supported option value/],
    ['/item/1/answerOption/3', /exactly one/],
    ['/item/1/answerOption/4', /exactly one/],
    ['/item/1/answerOption/5', /exactly one/],
    ['/item/2/answerOption/0/valueString', /does not fit an integer item/],
    ['/item/0/answerOption', /boolean item cannot restrict/],
    ['/item/1/answerOption/0/extension/0/valueDecimal', /numeric valueDecimal/],
  ]],
  ['contained resources sharing an id', variant((q) => (q.contained = [contained[0], { ...contained[1], id: 'moods' }])), [['/contained/1/id', /repeats the id/]]],
  ['wrong member types', variant((q) => { q.item[0].required = 'yes'; q.item[3].item[0].linkId = ''; q.title = 7; q.item[1].answerOption[0].valueCoding.code = 5; }), [['/item/0/required', /boolean/], ['/item/3/item/0/linkId', /fewer than 1/], ['/title', /string/], ['/item/1/answerOption/0/valueCoding/code', /string/]]],
  ['control characters and unpaired surrogates in text', variant((q) => { q.title = 'In\u0000take'; q.item[0].text = 'Smoke\uD800?'; q.item[0]['bad\u0007key'] = 1; }), [['/title', /control characters/], ['/item/0/text', /control characters/], ['/item/0/bad\u0007key', /property name/]]],
  ['an active questionnaire without items', variant((q) => { q.status = 'active'; delete q.item; }), [['/item', /at least one item/]]],
  ['server-set members in a FHIR resource', variant((q) => { q.createdAt = '2020-01-01T00:00:00Z'; q.businessVersion = '1'; }), [['/createdAt', /set by the server/], ['/businessVersion', /send the business version as version/]]],
];

describe.each(storageModes())('questionnaire definition rules on %s', (mode) => {
  let srv: TestServer;
  let api: Client;
  beforeAll(async () => {
    srv = await startServer(mode);
    api = client(srv.url, await srv.token({ tenant: await srv.newTenant(), roles: ['manager'] }));
  });
  afterAll(() => srv?.close());
  const count = async () => (await api('GET', `${Q}?limit=100`)).body.data.length as number;

  it('the base definition is valid (guards the cases below)', async () => {
    expect((await api('POST', Q, { body: simpleQuestionnaire() })).status).toBe(201);
  });

  it.each(CASES)('refuses %s, naming each problem', async (_what, body, expected) => {
    const before = await count();
    const err = expectError(await api('POST', Q, { body }), 400, 'VALIDATION_FAILED');
    const got = err.details ?? [];
    expect(got.map((d) => d.path).sort(), JSON.stringify(got)).toEqual(expected.map(([p]) => p).sort());
    for (const [path, message] of expected) expect(got.some((d) => d.path === path && message.test(d.message)), `${path} ${message} in ${JSON.stringify(got)}`).toBe(true);
    expect(await count()).toBe(before);
  });

  it('lists every problem of one definition together', async () => {
    const body = variant((q) => {
      q.resourceType = 'Questionnaire';
      q.item[0].type = 'signature'; // unknown type
      q.item[3].item[0].linkId = 'smoker'; // duplicate
      q.item[2].enableWhen = [{ question: 'ghost', operator: '=', answerBoolean: true }, { question: 'smoker', operator: 'exists', answerInteger: 1 }]; // missing target, exists, no enableBehavior
      delete q.item[1].answerOption; // choice without answers
      q.item.push({ linkId: 'empty', type: 'group' }, { linkId: 'd', type: 'display', required: true }, { linkId: 'n', type: 'decimal', maxLength: 4 });
    });
    const err = expectError(await api('POST', Q, { body }), 400, 'VALIDATION_FAILED');
    expect(err.details?.map((d) => d.path).sort()).toEqual([
      '/item/0/type',
      '/item/1/answerOption',
      '/item/2/enableBehavior',
      '/item/2/enableWhen/0/question',
      '/item/2/enableWhen/1/answerInteger',
      '/item/3/item/0/linkId',
      '/item/4/item',
      '/item/5/required',
      '/item/6/maxLength',
    ]);
  });

  it('accepts the supported model: every operator on fitting types, any/all, nested repeating groups, contained value sets by #id or canonical url', async () => {
    const body = variant((q) => {
      q.contained = [contained[0]];
      q.item.push(
        { linkId: 'when', type: 'date', answerOption: [{ valueDate: '2024-01' }, { valueDate: '2024-02-29' }] },
        { linkId: 'at', type: 'dateTime' },
        { linkId: 'time', type: 'time', readOnly: true },
        { linkId: 'dose', type: 'decimal' },
        { linkId: 'weight', type: 'quantity' },
        { linkId: 'mood2', type: 'open-choice', answerValueSet: '#moods', maxLength: 40 },
        { linkId: 'mood3', type: 'choice', answerValueSet: 'https://forms.example.org/vs/moods', repeats: true },
        { linkId: 'notes', type: 'text', maxLength: 2000 },
        { linkId: 'info', type: 'display', text: 'Thanks', required: false },
        {
          linkId: 'outer', type: 'group', repeats: true, enableBehavior: 'all',
          enableWhen: [
            { question: 'packs', operator: '>=', answerInteger: 2 },
            { question: 'dose', operator: '<', answerDecimal: 2.5 },
            { question: 'when', operator: '!=', answerDate: '2024-01' },
            { question: 'at', operator: '>', answerDateTime: '2024-01-01T10:00:00Z' },
            { question: 'time', operator: '<=', answerTime: '10:30:00' },
            { question: 'weight', operator: '>', answerQuantity: { value: 70, unit: 'kg' } },
            { question: 'mood2', operator: '=', answerString: 'meh' },
            { question: 'mood3', operator: '=', answerCoding: { system: 'urn:test:mood', code: 'good' } },
            { question: 'notes', operator: 'exists', answerBoolean: false },
          ],
          item: [{ linkId: 'inner', type: 'group', repeats: true, item: [{ linkId: 'inner.q', type: 'string', enableBehavior: 'any', enableWhen: [{ question: 'smoker', operator: '=', answerBoolean: true }, { question: 'mood', operator: '!=', answerCoding: { system: 'urn:test:mood', code: 'bad' } }] }] }],
        },
      );
    });
    const res = await api('POST', Q, { body });
    expect(res.status, res.text).toBe(201);
    expect(res.body.item).toEqual(body.item);
  });

  it('revalidates a patched draft whole and lists the problems the patch causes', async () => {
    const q = (await api('POST', Q, { body: simpleQuestionnaire() })).body;
    const item = [...q.item];
    item[2] = { ...item[2], enableWhen: [{ question: 'mood', operator: '=', answerBoolean: true }] };
    item[3] = { ...item[3], item: [] };
    const err = expectError(await api('PATCH', `${Q}/${q.id}`, { body: { item }, headers: { 'if-match': 'W/"1"' } }), 400, 'VALIDATION_FAILED');
    expect(err.details?.map((d) => d.path).sort()).toEqual(['/item/2/enableWhen/0/answerBoolean', '/item/3/item']);
  });

  it('refuses definitions nested beyond the limits', async () => {
    let item: Def = { linkId: 'leaf', type: 'string' };
    for (let i = 0; i < 25; i++) item = { linkId: `g${i}`, type: 'group', item: [item] };
    const err = expectError(await api('POST', Q, { body: simpleQuestionnaire({ item: [item] }) }), 400, 'VALIDATION_FAILED');
    expect(err.details?.[0]?.message).toMatch(/nest deeper than 20/);
    let deep: unknown = 'x';
    for (let i = 0; i < 200; i++) deep = [deep];
    // JSON this deep is refused at the edge, before it is parsed (JSON_MAX_DEPTH, src/http/security.ts).
    expectError(await api('POST', Q, { body: simpleQuestionnaire({ extension: [{ url: 'urn:x', valueDeep: deep }] }) }), 400, 'MALFORMED_REQUEST');
  });
});
