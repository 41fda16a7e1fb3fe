import { eq, ne, sql, type SQL } from 'drizzle-orm';
import type { Querier } from '../../platform/db/db.js';
import { likePrefix } from '../patients/name-search.js';
import { liveById, listLive } from '../shared/versioned-repo.js';
import type { QuestionnaireStatus } from './questionnaires.schema.js';
import { questionnaires, type QuestionnaireRow } from './questionnaires.table.js';

export interface QuestionnaireFilters {
  status?: QuestionnaireStatus;
  /** Case-insensitive substring of the title. */
  title?: string;
  url?: string;
  /** Patients see published questionnaires only. */
  hideDrafts?: boolean;
}

export function listQuestionnaires(q: Querier, tenantId: string, limit: number, afterId: string | undefined, f: QuestionnaireFilters) {
  const filters: (SQL | undefined)[] = [
    f.status ? eq(questionnaires.status, f.status) : undefined,
    f.hideDrafts ? ne(questionnaires.status, 'draft') : undefined,
    f.url ? eq(questionnaires.url, f.url) : undefined,
    // likePrefix escapes LIKE metacharacters; the leading % makes it a substring match. ILIKE folds
    // case on both sides the same way, whatever the database's locale.
    f.title ? sql`${questionnaires.title} ilike ${`%${likePrefix(f.title)}`}` : undefined,
  ];
  return listLive<QuestionnaireRow>(q, questionnaires, tenantId, limit, afterId, filters);
}

/**
 * One live questionnaire, share-locked until the caller's transaction ends: a response being
 * started on it holds off a concurrent retire (which locks FOR UPDATE) until it commits.
 */
export async function findQuestionnaireShared(q: Querier, tenantId: string, id: string): Promise<QuestionnaireRow | undefined> {
  const rows = await q.select().from(questionnaires).where(liveById(questionnaires, tenantId, id)).for('share');
  return rows[0];
}
