// PostgresMetaStore: content-addressed blobs and the OCI namespace (repositories, manifests,
// tags, referrers).
#include "meta/postgres/postgres_meta_store.h"
#include "meta/sqlite/sqlite_util.h"

namespace wharf {

using pg::Conn;
using pg::Params;
using pg::Rows;

namespace {

constexpr int64_t kRefBlob = 0;
constexpr int64_t kRefManifest = 1;

// The rows past `n` only say that there is more (the queries ask for n + 1).
Page PageOf(const Rows& q, size_t n) {
  Page page;
  for (int i = 0; i < q.size(); ++i) {
    if (page.items.size() == n) {
      page.more = true;
      break;
    }
    page.items.push_back(q.Text(i, 0));
  }
  return page;
}

}  // namespace

// A repository "exists" while it holds a blob link or a manifest.
#define WHARF_PG_REPO_NONEMPTY                                      \
  "(EXISTS (SELECT 1 FROM repo_blobs b WHERE b.repo_id = r.id) OR " \
  "EXISTS (SELECT 1 FROM manifests m WHERE m.repo_id = r.id))"

// ---- Blobs ----

Result<int64_t> PostgresMetaStore::RepoId(Conn& c, const std::string& name, bool create) {
  {
    WHARF_ASSIGN_OR_RETURN(
        Rows q, c.Exec("SELECT id FROM repositories WHERE name = $1", Params().Text(name)));
    if (!q.empty()) return q.Int(0, 0);
  }
  if (!create) return 0;
  // A racing creator makes this wait and then fail to serialize; the retry finds its row.
  WHARF_ASSIGN_OR_RETURN(Rows ins, c.Exec("INSERT INTO repositories(name) VALUES ($1) "
                                          "ON CONFLICT (name) DO NOTHING RETURNING id",
                                          Params().Text(name)));
  if (ins.empty()) return Err(Unavailable("repository " + name + " created concurrently"));
  return ins.Int(0, 0);
}

Status PostgresMetaStore::LinkBlobIn(Conn& c, int64_t repo_id, const Digest& digest) {
  return c.Do(
      "INSERT INTO repo_blobs(repo_id, digest, linked_unix) VALUES ($1, $2, $3) "
      "ON CONFLICT (repo_id, digest) DO UPDATE SET linked_unix = EXCLUDED.linked_unix",
      Params().Int(repo_id).Text(digest.ToString()).Int(Now()));
}

Result<bool> PostgresMetaStore::DropBlobIfUnlinked(Conn& c, const std::string& digest,
                                                   GcFreed* freed) {
  WHARF_ASSIGN_OR_RETURN(Rows still, c.Exec("SELECT 1 FROM repo_blobs WHERE digest = $1 LIMIT 1",
                                            Params().Text(digest)));
  if (!still.empty()) return false;
  WHARF_ASSIGN_OR_RETURN(
      Rows rm, c.Exec("DELETE FROM blobs WHERE digest = $1 RETURNING size", Params().Text(digest)));
  if (rm.empty()) return false;
  const std::string owner = "blob:" + digest;  // ChunkOwner::Blob(digest).ToString()
  WHARF_META_RETURN_IF_ERROR(DeleteChunkList(c, owner));
  WHARF_ASSIGN_OR_RETURN(Rows released,
                         c.Exec("UPDATE chunks SET owner = '', updated_unix = $1 WHERE owner = $2",
                                Params().Int(Now()).Text(owner)));
  if (freed) {
    freed->blobs += 1;
    freed->blob_bytes += rm.U64(0, 0);
    freed->chunks += static_cast<uint64_t>(released.affected());
  }
  return true;
}

Result<bool> PostgresMetaStore::StoreBlob(Conn& c, std::string_view from, const std::string& repo,
                                          const BlobRecord& blob) {
  std::string digest = blob.digest.ToString();
  WHARF_ASSIGN_OR_RETURN(Rows ins,
                         c.Exec("INSERT INTO blobs(digest, size, created_unix) "
                                "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                                Params().Text(digest).U64(blob.size).Int(blob.created_unix)));
  bool stored = ins.affected() == 1;
  if (!stored) {
    // Dedup: the stored copy wins; what this upload wrote is garbage.
    WHARF_META_RETURN_IF_ERROR(DiscardChunks(c, from, blob.chunks));
  } else {
    std::string owner = ChunkOwner::Blob(blob.digest).ToString();
    WHARF_META_RETURN_IF_ERROR(AdoptChunks(c, owner, from, blob.chunks));
    WHARF_META_RETURN_IF_ERROR(AppendChunkList(c, owner, 0, blob.chunks));
    if (!from.empty()) WHARF_META_RETURN_IF_ERROR(ReleaseOwner(c, from));  // unused chunks
  }
  WHARF_ASSIGN_OR_RETURN(int64_t repo_id, RepoId(c, repo, /*create=*/true));
  WHARF_META_RETURN_IF_ERROR(LinkBlobIn(c, repo_id, blob.digest));
  return stored;
}

Result<bool> PostgresMetaStore::CommitBlob(std::string_view upload_id, const std::string& repo,
                                           const BlobRecord& blob) {
  if (repo.empty()) return Err(InvalidArgument("repository name is empty"));
  WHARF_META_RETURN_IF_ERROR(sqlite::CheckChunks(blob.chunks, blob.size));
  return RunFor<bool>(Mode::kWrite, [&](Conn& c) -> Result<bool> {
    WHARF_ASSIGN_OR_RETURN(Rows del, c.Exec("DELETE FROM uploads WHERE id = $1 RETURNING repo",
                                            Params().Text(upload_id)));
    if (del.empty()) return Err(NotFound(fmt::format("upload {}", upload_id)));
    if (del.Text(0, 0) != repo) {
      return Err(
          InvalidArgument(fmt::format("upload {} belongs to another repository", upload_id)));
    }
    std::string from = ChunkOwner::Upload(upload_id).ToString();
    WHARF_META_RETURN_IF_ERROR(DeleteChunkList(c, from));
    return StoreBlob(c, from, repo, blob);
  });
}

Result<bool> PostgresMetaStore::PutBlob(const std::string& repo, const BlobRecord& blob) {
  if (repo.empty()) return Err(InvalidArgument("repository name is empty"));
  WHARF_META_RETURN_IF_ERROR(sqlite::CheckChunks(blob.chunks, blob.size));
  return RunFor<bool>(Mode::kWrite, [&](Conn& c) { return StoreBlob(c, "", repo, blob); });
}

Result<BlobRecord> PostgresMetaStore::ReadBlob(Conn& c, const std::string& repo,
                                               const Digest& digest) {
  // One statement (one snapshot): the blob row beside each of its chunks; with `repo`, only
  // if the repository links it.
  std::string d = digest.ToString();
  Result<Rows> q =
      repo.empty()
          ? c.Exec(
                "SELECT o.size, o.created_unix, c.grp, c.id, c.size, c.checksum FROM blobs o "
                "LEFT JOIN chunk_lists l ON l.owner = 'blob:' || o.digest "
                "LEFT JOIN chunks c ON c.id = l.chunk_id WHERE o.digest = $1 ORDER BY l.seq",
                Params().Text(d))
          : c.Exec(
                "SELECT o.size, o.created_unix, c.grp, c.id, c.size, c.checksum FROM blobs o "
                "JOIN repo_blobs rb ON rb.digest = o.digest "
                "JOIN repositories r ON r.id = rb.repo_id "
                "LEFT JOIN chunk_lists l ON l.owner = 'blob:' || o.digest "
                "LEFT JOIN chunks c ON c.id = l.chunk_id WHERE r.name = $1 AND o.digest = $2 "
                "ORDER BY l.seq",
                Params().Text(repo).Text(d));
  if (!q) return Err(q.error());
  if (q->empty()) {
    return Err(NotFound(repo.empty() ? fmt::format("blob {}", d)
                                     : fmt::format("blob {} not linked in {}", d, repo)));
  }
  BlobRecord b{digest, q->U64(0, 0), {}, q->Int(0, 1)};
  for (int i = 0; i < q->size(); ++i) {
    if (q->IsNull(i, 3)) continue;
    b.chunks.push_back(ChunkRef{q->Text(i, 2), q->Text(i, 3), q->U64(i, 4), q->U64(i, 5)});
  }
  return b;
}

Result<BlobRecord> PostgresMetaStore::GetBlob(const Digest& digest) {
  return RunFor<BlobRecord>(Mode::kAlone, [&](Conn& c) { return ReadBlob(c, "", digest); });
}

Result<BlobRecord> PostgresMetaStore::GetLinkedBlob(const std::string& repo, const Digest& digest) {
  if (repo.empty()) return Err(NotFound("blob not linked in an empty repository name"));
  return RunFor<BlobRecord>(Mode::kAlone, [&](Conn& c) { return ReadBlob(c, repo, digest); });
}

Status PostgresMetaStore::LinkBlob(const std::string& repo, const Digest& digest) {
  if (repo.empty()) return InvalidArgument("repository name is empty");
  return Run(Mode::kWrite, [&](Conn& c) -> Status {
    WHARF_ASSIGN_OR_RETURN(Rows q, c.Exec("SELECT 1 FROM blobs WHERE digest = $1 FOR SHARE",
                                          Params().Text(digest.ToString())));
    if (q.empty()) return NotFound(fmt::format("blob {}", digest.ToString()));
    WHARF_ASSIGN_OR_RETURN(int64_t repo_id, RepoId(c, repo, /*create=*/true));
    return LinkBlobIn(c, repo_id, digest);
  });
}

Result<bool> PostgresMetaStore::BlobLinked(const std::string& repo, const Digest& digest) {
  return RunFor<bool>(Mode::kAlone, [&](Conn& c) -> Result<bool> {
    WHARF_ASSIGN_OR_RETURN(
        Rows q, c.Exec("SELECT 1 FROM repo_blobs b JOIN repositories r ON r.id = b.repo_id "
                       "WHERE r.name = $1 AND b.digest = $2",
                       Params().Text(repo).Text(digest.ToString())));
    return !q.empty();
  });
}

Result<bool> PostgresMetaStore::UnlinkBlob(const std::string& repo, const Digest& digest) {
  return RunFor<bool>(Mode::kWrite, [&](Conn& c) -> Result<bool> {
    std::string d = digest.ToString();
    WHARF_ASSIGN_OR_RETURN(Rows del,
                           c.Exec("DELETE FROM repo_blobs WHERE digest = $2 AND repo_id = "
                                  "(SELECT id FROM repositories WHERE name = $1)",
                                  Params().Text(repo).Text(d)));
    if (del.affected() == 0) return Err(NotFound(fmt::format("blob {} not linked in {}", d, repo)));
    return DropBlobIfUnlinked(c, d, nullptr);
  });
}

// ---- Manifests, tags, repositories, referrers ----

Status PostgresMetaStore::InsertManifest(Conn& c, int64_t repo_id, const ManifestRecord& m) {
  std::string digest = m.digest.ToString();
  Params p;
  p.Int(repo_id).Text(digest).Text(m.media_type).Bytes(m.content);
  if (m.subject) {
    p.Text(m.subject->ToString());
  } else {
    p.NullText();
  }
  p.Text(m.artifact_type).Text(m.annotations_json).Int(m.created_unix);
  WHARF_RETURN_IF_ERROR(
      c.Do("INSERT INTO manifests(repo_id, digest, media_type, content, subject, artifact_type, "
           "annotations_json, created_unix) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
           p));
  for (int64_t kind : {kRefBlob, kRefManifest}) {
    const std::vector<Digest>& refs = kind == kRefBlob ? m.blobs : m.manifests;
    for (size_t i = 0; i < refs.size(); ++i) {
      WHARF_RETURN_IF_ERROR(
          c.Do("INSERT INTO manifest_refs(repo_id, manifest, kind, seq, target) "
               "VALUES ($1, $2, $3, $4, $5)",
               Params()
                   .Int(repo_id)
                   .Text(digest)
                   .Int(kind)
                   .Int(static_cast<int64_t>(i))
                   .Text(refs[i].ToString())));
    }
  }
  return Status::Ok();
}

Result<std::optional<Digest>> PostgresMetaStore::FirstMissingRef(Conn& c, int64_t repo_id,
                                                                 const ManifestRecord& m) {
  // FOR SHARE: a concurrent unlink or delete of a reference waits for this transaction (and
  // serializable isolation catches the rest).
  for (const Digest& d : m.blobs) {
    WHARF_ASSIGN_OR_RETURN(Rows q, c.Exec("SELECT 1 FROM repo_blobs WHERE repo_id = $1 AND "
                                          "digest = $2 FOR SHARE",
                                          Params().Int(repo_id).Text(d.ToString())));
    if (q.empty()) return std::optional<Digest>(d);
  }
  for (const Digest& d : m.manifests) {
    WHARF_ASSIGN_OR_RETURN(Rows q, c.Exec("SELECT 1 FROM manifests WHERE repo_id = $1 AND "
                                          "digest = $2 FOR SHARE",
                                          Params().Int(repo_id).Text(d.ToString())));
    if (q.empty()) return std::optional<Digest>(d);
  }
  return std::optional<Digest>();
}

Status PostgresMetaStore::PutManifest(const std::string& repo, const ManifestRecord& m,
                                      std::optional<std::string> tag, Digest* missing) {
  if (repo.empty()) return InvalidArgument("repository name is empty");
  if (tag && tag->empty()) return InvalidArgument("tag is empty");
  if (m.content.size() > kMaxManifestBytes) {
    return InvalidArgument(
        fmt::format("manifest of {} bytes exceeds {}", m.content.size(), kMaxManifestBytes));
  }
  if (DigestOf(m.content, m.digest.algorithm()) != m.digest) {
    return DigestMismatch(fmt::format("manifest content does not hash to {}", m.digest.ToString()));
  }
  std::optional<Digest> absent;
  Status st = Run(Mode::kWrite, [&](Conn& c) -> Status {
    absent.reset();
    WHARF_ASSIGN_OR_RETURN(int64_t repo_id, RepoId(c, repo, /*create=*/true));
    WHARF_ASSIGN_OR_RETURN(absent, FirstMissingRef(c, repo_id, m));
    if (absent) return NotFound("manifest references unknown content " + absent->ToString());
    WHARF_ASSIGN_OR_RETURN(Rows q, c.Exec("SELECT 1 FROM manifests WHERE repo_id = $1 AND "
                                          "digest = $2 FOR UPDATE",
                                          Params().Int(repo_id).Text(m.digest.ToString())));
    if (q.empty()) WHARF_RETURN_IF_ERROR(InsertManifest(c, repo_id, m));
    if (!tag) return Status::Ok();
    return c.Do(
        "INSERT INTO tags(repo_id, name, digest) VALUES ($1, $2, $3) "
        "ON CONFLICT (repo_id, name) DO UPDATE SET digest = EXCLUDED.digest",
        Params().Int(repo_id).Text(*tag).Text(m.digest.ToString()));
  });
  if (absent && missing) *missing = *absent;
  return st;
}

Result<ManifestRecord> PostgresMetaStore::GetManifest(const std::string& repo,
                                                      const Digest& digest) {
  return RunFor<ManifestRecord>(Mode::kRead, [&](Conn& c) -> Result<ManifestRecord> {
    std::string d = digest.ToString();
    WHARF_ASSIGN_OR_RETURN(
        Rows q, c.Exec("SELECT m.media_type, m.content, m.subject, m.artifact_type, "
                       "m.annotations_json, m.created_unix, m.repo_id FROM manifests m JOIN "
                       "repositories r ON r.id = m.repo_id WHERE r.name = $1 AND m.digest = $2",
                       Params().Text(repo).Text(d)));
    if (q.empty()) return Err(NotFound(fmt::format("manifest {} in {}", d, repo)));
    ManifestRecord m;
    m.digest = digest;
    m.media_type = q.Text(0, 0);
    m.content = q.Text(0, 1);
    if (!q.IsNull(0, 2)) {
      WHARF_ASSIGN_OR_RETURN(m.subject, sqlite::StoredDigest(q.Text(0, 2)));
    }
    m.artifact_type = q.Text(0, 3);
    m.annotations_json = q.Text(0, 4);
    m.created_unix = q.Int(0, 5);
    WHARF_ASSIGN_OR_RETURN(Rows refs,
                           c.Exec("SELECT kind, target FROM manifest_refs WHERE repo_id = $1 AND "
                                  "manifest = $2 ORDER BY kind, seq",
                                  Params().Int(q.Int(0, 6)).Text(d)));
    for (int i = 0; i < refs.size(); ++i) {
      WHARF_ASSIGN_OR_RETURN(Digest target, sqlite::StoredDigest(refs.Text(i, 1)));
      (refs.Int(i, 0) == kRefBlob ? m.blobs : m.manifests).push_back(std::move(target));
    }
    return m;
  });
}

Result<Digest> PostgresMetaStore::ResolveTag(const std::string& repo, const std::string& tag) {
  return RunFor<Digest>(Mode::kAlone, [&](Conn& c) -> Result<Digest> {
    WHARF_ASSIGN_OR_RETURN(
        Rows q, c.Exec("SELECT t.digest FROM tags t JOIN repositories r ON r.id = t.repo_id "
                       "WHERE r.name = $1 AND t.name = $2",
                       Params().Text(repo).Text(tag)));
    if (q.empty()) return Err(NotFound(fmt::format("tag {} in {}", tag, repo)));
    return sqlite::StoredDigest(q.Text(0, 0));
  });
}

Result<bool> PostgresMetaStore::ManifestExists(const std::string& repo, const Digest& digest) {
  return RunFor<bool>(Mode::kAlone, [&](Conn& c) -> Result<bool> {
    WHARF_ASSIGN_OR_RETURN(
        Rows q, c.Exec("SELECT 1 FROM manifests m JOIN repositories r ON r.id = m.repo_id "
                       "WHERE r.name = $1 AND m.digest = $2",
                       Params().Text(repo).Text(digest.ToString())));
    return !q.empty();
  });
}

Status PostgresMetaStore::DeleteTag(const std::string& repo, const std::string& tag) {
  return Run(Mode::kWrite, [&](Conn& c) -> Status {
    WHARF_ASSIGN_OR_RETURN(Rows del, c.Exec("DELETE FROM tags WHERE name = $1 AND repo_id = "
                                            "(SELECT id FROM repositories WHERE name = $2)",
                                            Params().Text(tag).Text(repo)));
    if (del.affected() == 0) return NotFound(fmt::format("tag {} in {}", tag, repo));
    return Status::Ok();
  });
}

Status PostgresMetaStore::DeleteManifest(const std::string& repo, const Digest& digest) {
  return Run(Mode::kWrite, [&](Conn& c) -> Status {
    // Tags and manifest_refs go by ON DELETE CASCADE.
    WHARF_ASSIGN_OR_RETURN(Rows del, c.Exec("DELETE FROM manifests WHERE digest = $1 AND "
                                            "repo_id = (SELECT id FROM repositories WHERE "
                                            "name = $2)",
                                            Params().Text(digest.ToString()).Text(repo)));
    if (del.affected() == 0) {
      return NotFound(fmt::format("manifest {} in {}", digest.ToString(), repo));
    }
    return Status::Ok();
  });
}

Result<Page> PostgresMetaStore::ListTags(const std::string& repo, const std::string& last,
                                         size_t n) {
  return RunFor<Page>(Mode::kAlone, [&](Conn& c) -> Result<Page> {
    WHARF_ASSIGN_OR_RETURN(
        Rows q, c.Exec("SELECT t.name FROM tags t JOIN repositories r ON r.id = t.repo_id "
                       "WHERE r.name = $1 AND t.name > $2 ORDER BY t.name LIMIT $3",
                       Params().Text(repo).Text(last).Int(sqlite::SqlLimit(n) + 1)));
    return PageOf(q, n);
  });
}

Result<Page> PostgresMetaStore::ListRepositories(const std::string& last, size_t n) {
  return RunFor<Page>(Mode::kAlone, [&](Conn& c) -> Result<Page> {
    WHARF_ASSIGN_OR_RETURN(
        Rows q,
        c.Exec("SELECT r.name FROM repositories r WHERE r.name > $1 AND " WHARF_PG_REPO_NONEMPTY
               " ORDER BY r.name LIMIT $2",
               Params().Text(last).Int(sqlite::SqlLimit(n) + 1)));
    return PageOf(q, n);
  });
}

Result<bool> PostgresMetaStore::RepositoryExists(const std::string& repo) {
  return RunFor<bool>(Mode::kAlone, [&](Conn& c) -> Result<bool> {
    WHARF_ASSIGN_OR_RETURN(Rows q, c.Exec("SELECT 1 FROM repositories r WHERE r.name = $1 "
                                          "AND " WHARF_PG_REPO_NONEMPTY,
                                          Params().Text(repo)));
    return !q.empty();
  });
}

Result<std::vector<ReferrerRecord>> PostgresMetaStore::ListReferrers(const std::string& repo,
                                                                     const Digest& subject) {
  using Refs = std::vector<ReferrerRecord>;
  return RunFor<Refs>(Mode::kAlone, [&](Conn& c) -> Result<Refs> {
    WHARF_ASSIGN_OR_RETURN(
        Rows q, c.Exec("SELECT m.media_type, m.digest, octet_length(m.content)::bigint, "
                       "m.artifact_type, m.annotations_json FROM manifests m JOIN repositories r "
                       "ON r.id = m.repo_id WHERE r.name = $1 AND m.subject = $2 "
                       "ORDER BY m.digest",
                       Params().Text(repo).Text(subject.ToString())));
    Refs out;
    for (int i = 0; i < q.size(); ++i) {
      WHARF_ASSIGN_OR_RETURN(Digest d, sqlite::StoredDigest(q.Text(i, 1)));
      out.push_back(
          ReferrerRecord{q.Text(i, 0), std::move(d), q.U64(i, 2), q.Text(i, 3), q.Text(i, 4)});
    }
    return out;
  });
}

Result<StoredTotals> PostgresMetaStore::GetStoredTotals() {
  // One statement: one snapshot, so the counts agree with each other.
  return RunFor<StoredTotals>(Mode::kAlone, [&](Conn& c) -> Result<StoredTotals> {
    WHARF_ASSIGN_OR_RETURN(
        Rows q, c.Exec("SELECT (SELECT count(*) FROM blobs), "
                       "(SELECT coalesce(sum(size), 0)::bigint FROM blobs), "
                       "(SELECT count(*) FROM manifests), "
                       "(SELECT coalesce(sum(octet_length(content)), 0)::bigint FROM manifests), "
                       "(SELECT count(*) FROM files), "
                       "(SELECT coalesce(sum(size), 0)::bigint FROM files), "
                       "(SELECT count(*) FROM repositories r WHERE " WHARF_PG_REPO_NONEMPTY "), "
                       "(SELECT count(*) FROM tags)"));
    if (q.empty()) return Err(Internal("stored totals: no row"));
    StoredTotals t;
    t.blobs = q.U64(0, 0);
    t.blob_bytes = q.U64(0, 1);
    t.manifests = q.U64(0, 2);
    t.manifest_bytes = q.U64(0, 3);
    t.files = q.U64(0, 4);
    t.file_bytes = q.U64(0, 5);
    t.repositories = q.U64(0, 6);
    t.tags = q.U64(0, 7);
    return t;
  });
}

}  // namespace wharf
