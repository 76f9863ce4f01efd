// SQL the SQLite and PostgreSQL stores share about the work queue (MetaStore "Work queue").
#pragma once

// Blob digest D (an SQL expression, e.g. "b.digest") is not named by a work-queue item that is
// not done, nor referenced by a manifest whose item is not done: DigestQueued's condition,
// negated (kind 0 = blob, 1 = manifest; state 2 = done). The same text in both dialects.
#define WHARF_SQL_NOT_QUEUED(D)                                                              \
  "NOT EXISTS (SELECT 1 FROM work_queue w WHERE w.digest = " D                               \
  " AND w.state <> 2 AND w.kind IN (0, 1)) AND NOT EXISTS (SELECT 1 FROM work_queue w JOIN " \
  "repositories r ON r.name = w.repository JOIN manifest_refs f ON f.repo_id = r.id AND "    \
  "f.manifest = w.digest WHERE w.kind = 1 AND w.state <> 2 AND f.target = " D ")"
