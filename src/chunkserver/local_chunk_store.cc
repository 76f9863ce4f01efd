#include "chunkserver/local_chunk_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <unordered_set>

#include "common/checksum.h"
#include "common/chunk_id.h"
#include "common/fs.h"

namespace wharf {
namespace {

int64_t NowUnix() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool ValidSubdirName(const std::string& s) {
  auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); };
  return s.size() == 2 && hex(s[0]) && hex(s[1]);
}

// "3f" -> 63, for a name that passed ValidSubdirName (or the start of a valid chunk id).
size_t SubdirIndex(std::string_view s) {
  auto v = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  return static_cast<size_t>(v(s[0]) * 16 + v(s[1]));
}

Status BadId(std::string_view id) {
  return InvalidArgument(fmt::format("invalid chunk id ({} bytes)", id.size()));
}

// Runs an fsync-like call and records its latency.
template <typename F>
Status Timed(HistogramMetric& h, F f) {
  auto start = std::chrono::steady_clock::now();
  Status st = f();
  h.Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return st;
}

}  // namespace

struct LocalChunkStore::Counters {
  explicit Counters(const Labels& l)
      : writes(Metrics().Counter("wharf_chunkserver_chunk_writes_total",
                                 "Chunks committed to disk.", l)),
        write_bytes(Metrics().Counter("wharf_chunkserver_chunk_write_bytes_total",
                                      "Data bytes of committed chunks.", l)),
        write_failures(Metrics().Counter("wharf_chunkserver_chunk_write_failures_total",
                                         "Chunk writes that failed or were aborted.", l)),
        fsync_failures(Metrics().Counter("wharf_chunkserver_fsync_failures_total",
                                         "Failed fsyncs (each makes the store read-only).", l)),
        corrupt(Metrics().Counter("wharf_chunkserver_corrupt_chunks_total",
                                  "Chunks found corrupt by Open, Verify or the startup scan.", l)),
        quarantined(Metrics().Counter("wharf_chunkserver_quarantined_chunks_total",
                                      "Chunks moved to quarantine.", l)),
        no_space(Metrics().Counter("wharf_chunkserver_no_space_refusals_total",
                                   "Writes refused because free space is under the reserve.", l)),
        unknown_files(Metrics().Counter("wharf_chunkserver_unknown_files_total",
                                        "Unexpected files ignored by the startup scan.", l)),
        failed(Metrics().Gauge("wharf_chunkserver_store_failed",
                               "1 after a failed fsync: the store refuses writes.", l)),
        write_faults(Metrics().Gauge(
            "wharf_chunkserver_store_write_fault",
            "1 while chunk writes fail (until a write probe succeeds): reported read-only.", l)),
        fsync_seconds(Metrics().Histogram(
            "wharf_chunkserver_fsync_seconds",
            "Latency of chunk and directory fsyncs (with --sync group: of the wait for the "
            "shared syncfs).",
            l)),
        group_syncs(Metrics().Counter(
            "wharf_chunkserver_group_syncs_total",
            "syncfs calls made for commits with --sync group (each covers every commit "
            "waiting when it began).",
            l)),
        digest_ranges(Metrics().Counter(
            "wharf_chunkserver_digest_ranges_computed_total",
            "Inventory ranges whose digest was recomputed (the cache holds the others).", l)) {}
  CounterMetric& writes;
  CounterMetric& write_bytes;
  CounterMetric& write_failures;
  CounterMetric& fsync_failures;
  CounterMetric& corrupt;
  CounterMetric& quarantined;
  CounterMetric& no_space;
  CounterMetric& unknown_files;
  GaugeMetric& failed;
  GaugeMetric& write_faults;
  HistogramMetric& fsync_seconds;
  CounterMetric& group_syncs;
  CounterMetric& digest_ranges;
};

// Streams one chunk into <dir>/tmp, then hands the synced file to the store to publish.
class LocalChunkWriter : public ChunkWriter {
 public:
  LocalChunkWriter(LocalChunkStore* store, std::string id, size_t dir, ChunkHeader header,
                   std::string tmp_path, std::unique_ptr<WritableFile> file)
      : store_(store),
        id_(std::move(id)),
        dir_(dir),
        header_(header),
        tmp_path_(std::move(tmp_path)),
        file_(std::move(file)) {}

  ~LocalChunkWriter() override {
    if (!done_) Finish(Cancelled("writer destroyed before commit")).IgnoreError();
  }

  Status Append(const void* data, size_t n) override {
    if (done_) return InvalidArgument("append to a finished chunk writer");
    if (n > header_.size - written_) {
      return Finish(InvalidArgument(
          fmt::format("chunk {}: more than the announced {} bytes", id_, header_.size)));
    }
    if (Status st = store_->CheckSticky(); !st.ok()) return Finish(st);
    if (Status st = file_->Append(data, n); !st.ok()) return Finish(store_->NoteWriteFault(st));
    hasher_.Update(data, n);
    written_ += n;
    return Status::Ok();
  }

  Status Commit() override {
    if (done_) return result_;
    if (written_ != header_.size) {
      return Finish(InvalidArgument(
          fmt::format("chunk {}: short body: {} of {} bytes", id_, written_, header_.size)));
    }
    if (hasher_.Value() != header_.checksum) {
      return Finish(DigestMismatch(fmt::format("chunk {}: data hashes to {}, announced {}", id_,
                                               FormatChecksum(hasher_.Value()),
                                               FormatChecksum(header_.checksum))));
    }
    if (Status st = store_->CheckSticky(); !st.ok()) return Finish(st);
    if (Status st = file_->Flush(); !st.ok()) return Finish(store_->NoteWriteFault(st));
    Status st = store_->SyncChunkData(dir_, header_.size, file_.get());
    if (!st.ok()) return Finish(store_->SetSticky(st));
    if (st = file_->Close(); !st.ok()) return Finish(st);
    file_.reset();
    st = store_->Publish(id_, dir_, tmp_path_, header_);
    tmp_path_.clear();  // Publish renamed or removed it
    return Finish(st);
  }

 private:
  // Ends the writer with `st`: on failure, nothing of the chunk remains.
  Status Finish(Status st) {
    done_ = true;
    result_ = st;
    file_.reset();
    if (!tmp_path_.empty() && !st.ok()) {
      Status rm = store_->env_->Remove(tmp_path_);
      if (!rm.ok() && rm.code() != Code::kNotFound) {
        store_->log_->warn("temp file removal failed path={} err={}", tmp_path_, rm);
      }
    }
    store_->ReleaseSpace(dir_, kChunkHeaderSize + header_.size);
    if (st.ok()) {
      store_->counters_->writes.Inc();
      store_->counters_->write_bytes.Inc(header_.size);
    } else {
      store_->counters_->write_failures.Inc();
    }
    return st;
  }

  LocalChunkStore* store_;
  const std::string id_;
  const size_t dir_;
  const ChunkHeader header_;
  std::string tmp_path_;  // "" once renamed or removed
  std::unique_ptr<WritableFile> file_;
  Checksummer hasher_;
  uint64_t written_ = 0;
  bool done_ = false;
  Status result_;
};

// ---------------------------------------------------------------------------------------
// Opening and scanning.

LocalChunkStore::LocalChunkStore(Options options)
    : options_(std::move(options)),
      env_(options_.env ? options_.env : DefaultEnv()),
      dirs_(options_.dirs),
      log_(GetLogger("chunkserver")),
      counters_(std::make_unique<Counters>(options_.metric_labels)),
      pending_(dirs_.size(), 0),
      subdirs_(dirs_.size()) {}

LocalChunkStore::~LocalChunkStore() = default;  // locks_ release the directory locks

Result<std::unique_ptr<LocalChunkStore>> LocalChunkStore::Open(Options options) {
  if (options.dirs.empty()) return Err(InvalidArgument("chunk store: no data directories"));
  std::set<std::string> seen;
  for (auto& d : options.dirs) {
    if (d.empty()) return Err(InvalidArgument("chunk store: empty data directory"));
    std::string norm = std::filesystem::path(d).lexically_normal().string();
    while (norm.size() > 1 && norm.back() == '/') norm.pop_back();
    if (!seen.insert(norm).second) {
      return Err(InvalidArgument("chunk store: data directory listed twice: " + d));
    }
    d = norm;
  }
  if (options.max_chunk_bytes == 0 || options.max_chunk_bytes > (uint64_t{1} << 48)) {
    return Err(InvalidArgument("chunk store: max_chunk_bytes out of range"));
  }
  std::unique_ptr<LocalChunkStore> store(new LocalChunkStore(std::move(options)));
  std::map<std::string, Entry> index;
  for (size_t i = 0; i < store->dirs_.size(); ++i) {
    Status st = store->OpenDir(i);
    if (st.ok()) st = store->ScanDir(i, &index);
    if (!st.ok()) return Err(st);
    // Directories on one file system share one group, across the stores of this process.
    auto space = store->DirSpace(i);
    if (!space) return Err(space.error());
    store->sync_groups_.push_back(SyncGroup::For(store->env_.get(), space->device));
  }
  store->index_ = std::move(index);
  store->digests_stale_.set();
  store->log_->info("chunk store open dirs={} chunks={}", store->dirs_.size(),
                    store->index_.size());
  return store;
}

// Creates the skeleton, takes the directory lock and deletes leftover temp files.
Status LocalChunkStore::OpenDir(size_t dir) {
  const std::string& root = dirs_[dir];
  for (const char* sub : {"/chunks", "/tmp", "/quarantine"}) {
    WHARF_RETURN_IF_ERROR(env_->CreateDirs(root + sub));
  }
  auto lock = env_->LockFile(root + "/LOCK");
  if (!lock) {
    if (lock.error().code() == Code::kUnavailable) {
      return Unavailable("data directory in use by another store: " + root);
    }
    return lock.error();
  }
  locks_.push_back(std::move(*lock));
  WHARF_RETURN_IF_ERROR(env_->SyncDir(root));
  WHARF_ASSIGN_OR_RETURN(auto tmp_names, env_->ListDir(TmpDir(dir)));
  for (const auto& name : tmp_names) {
    Status st = env_->Remove(TmpDir(dir) + "/" + name);
    if (!st.ok())
      log_->warn("leftover temp file not removed dir={} file={} err={}", root, name, st);
  }
  if (!tmp_names.empty()) {
    log_->info("removed leftover temp files dir={} count={}", root, tmp_names.size());
    WHARF_RETURN_IF_ERROR(env_->SyncDir(TmpDir(dir)));
  }
  return Status::Ok();
}

Status LocalChunkStore::ScanDir(size_t dir, std::map<std::string, Entry>* index) {
  std::string chunks = dirs_[dir] + "/chunks";
  WHARF_ASSIGN_OR_RETURN(auto subs, env_->ListDir(chunks));
  for (const auto& sub : subs) {
    if (!ValidSubdirName(sub)) {
      counters_->unknown_files.Inc();
      log_->warn("unknown entry in chunk directory ignored path={}/{}", chunks, sub);
      continue;
    }
    subdirs_[dir].set(SubdirIndex(sub));
    WHARF_ASSIGN_OR_RETURN(auto names, env_->ListDir(chunks + "/" + sub));
    for (const auto& name : names) WHARF_RETURN_IF_ERROR(ScanFile(dir, sub, name, index));
  }
  return Status::Ok();
}

// Indexes one chunk file from its header; quarantines it if the header is damaged.
Status LocalChunkStore::ScanFile(size_t dir, const std::string& sub, const std::string& name,
                                 std::map<std::string, Entry>* index) {
  std::string path = dirs_[dir] + "/chunks/" + sub + "/" + name;
  if (!ValidChunkId(name) || name.compare(0, 2, sub) != 0) {
    counters_->unknown_files.Inc();
    log_->warn("unknown file in chunk directory ignored path={}", path);
    return Status::Ok();
  }
  if (index->count(name) > 0) {
    counters_->unknown_files.Inc();
    log_->warn("duplicate chunk ignored id={} path={} kept_dir={}", name, path,
               dirs_[(*index)[name].dir]);
    return Status::Ok();
  }
  auto fd = env_->OpenReadOnly(path);
  if (!fd) {
    log_->warn("chunk file unreadable, skipped path={} err={}", path, fd.error());
    return Status::Ok();
  }
  OpenChunk holder(*fd, 0, 0, 0, env_);  // closes the fd
  char buf[kChunkHeaderSize];
  auto n = env_->ReadAt(*fd, 0, buf, sizeof buf);
  auto st = n ? env_->StatFile(*fd) : Err(n.error());
  if (!st) {
    log_->warn("chunk file unreadable, skipped path={} err={}", path, st.error());
    return Status::Ok();
  }
  auto header = DecodeChunkHeader(buf, *n);
  if (header && st->size == kChunkHeaderSize + header->size) {
    (*index)[name] = Entry{dir, header->size, header->checksum, st->mtime_unix};
    return Status::Ok();
  }
  counters_->corrupt.Inc();
  log_->warn("damaged chunk file found at startup path={} err={}", path,
             header ? Corruption("file length disagrees with header") : header.error());
  return MoveToQuarantine(dir, path, name);
}

// ---------------------------------------------------------------------------------------
// Space.

Result<FsSpace> LocalChunkStore::DirSpace(size_t dir) {
  if (options_.space_for_test) return options_.space_for_test(dirs_[dir]);
  return env_->GetSpace(dirs_[dir]);
}

Result<size_t> LocalChunkStore::ReserveSpace(uint64_t file_bytes) {
  std::vector<std::optional<FsSpace>> spaces(dirs_.size());
  for (size_t i = 0; i < dirs_.size(); ++i) {
    auto s = DirSpace(i);
    if (s) {
      spaces[i] = *s;
    } else {
      log_->warn("statvfs failed dir={} err={}", dirs_[i], s.error());
    }
  }
  std::lock_guard lock(mu_);
  std::optional<size_t> best;
  uint64_t best_headroom = 0;
  for (size_t i = 0; i < dirs_.size(); ++i) {
    if (!spaces[i]) continue;
    uint64_t reserve = options_.reserve.BytesOf(spaces[i]->capacity);
    uint64_t avail = spaces[i]->free > pending_[i] ? spaces[i]->free - pending_[i] : 0;
    if (avail < reserve || avail - reserve < file_bytes) continue;
    uint64_t headroom = avail - reserve - file_bytes;
    if (!best || headroom > best_headroom) {
      best = i;
      best_headroom = headroom;
    }
  }
  if (!best) {
    counters_->no_space.Inc();
    return Err(
        NoSpace(fmt::format("no data directory has {} bytes above its reserve", file_bytes)));
  }
  pending_[*best] += file_bytes;
  return *best;
}

void LocalChunkStore::ReleaseSpace(size_t dir, uint64_t file_bytes) {
  std::lock_guard lock(mu_);
  pending_[dir] -= file_bytes;
}

Result<SpaceInfo> LocalChunkStore::Space() {
  SpaceInfo total;
  std::unordered_set<uint64_t> devices;
  for (size_t i = 0; i < dirs_.size(); ++i) {
    WHARF_ASSIGN_OR_RETURN(FsSpace s, DirSpace(i));
    // Directories sharing a real file system count once; fake test disks are all distinct.
    if (!options_.space_for_test && !devices.insert(s.device).second) continue;
    total.capacity += s.capacity;
    total.free += s.free;
    total.reserve_bytes += options_.reserve.BytesOf(s.capacity);
  }
  return total;
}

// ---------------------------------------------------------------------------------------
// Writing.

Status LocalChunkStore::CheckSticky() {
  if (!failed_.load(std::memory_order_acquire)) return Status::Ok();
  std::lock_guard lock(mu_);
  return sticky_;
}

Status LocalChunkStore::SetSticky(const Status& st) {
  counters_->fsync_failures.Inc();
  std::lock_guard lock(mu_);
  if (sticky_.ok()) {
    sticky_ = IOError("store failed, refusing writes after: " + st.message());
    failed_.store(true, std::memory_order_release);
    counters_->failed.Set(1);
    log_->error("fsync failed, chunk store is now read-only err={}", st);
  }
  return st;
}

Status LocalChunkStore::NoteWriteFault(const Status& st) {
  if (st.code() != Code::kIOError) return st;
  std::lock_guard lock(mu_);
  if (write_fault_.ok()) {
    write_fault_ = IOError("writes fail: " + st.message());
    counters_->write_faults.Set(1);
    log_->error("chunk write failed, reporting read-only until a write probe succeeds err={}", st);
  }
  return st;
}

Status LocalChunkStore::Health() {
  WHARF_RETURN_IF_ERROR(CheckSticky());
  std::lock_guard lock(mu_);
  return write_fault_;
}

Status LocalChunkStore::ProbeWrite() {
  Status st;
  for (size_t d = 0; d < dirs_.size() && st.ok(); ++d) {
    const std::string path = TmpDir(d) + "/.write-probe-" + RandomHex(8);
    auto file = env_->NewWritableFile(path, WriteMode::kBuffered);
    if (!file) {
      st = file.error();
      break;
    }
    static constexpr char kProbe[] = "wharf write probe\n";
    st = (*file)->Append(kProbe, sizeof(kProbe) - 1);
    if (st.ok()) st = (*file)->Sync();
    if (st.ok()) st = (*file)->Close();
    file->reset();
    Status removed = env_->Remove(path);
    if (st.ok() && !removed.ok() && removed.code() != Code::kNotFound) st = removed;
    if (!st.ok()) st = IOError(fmt::format("data directory {}: {}", dirs_[d], st.message()));
  }
  if (!st.ok()) return NoteWriteFault(st);
  std::lock_guard lock(mu_);
  if (!write_fault_.ok()) {
    write_fault_ = Status::Ok();
    counters_->write_faults.Set(0);
    log_->info("write probe succeeded: chunk store writable again");
  }
  return st;
}

void LocalChunkStore::BeginMutation(std::unique_lock<std::mutex>& lock, const std::string& id) {
  mutation_done_.wait(lock, [&] { return mutating_.count(id) == 0; });
  mutating_.insert(id);
}

void LocalChunkStore::EndMutation(const std::string& id) {
  {
    std::lock_guard lock(mu_);
    mutating_.erase(id);
  }
  mutation_done_.notify_all();
}

Result<std::unique_ptr<ChunkWriter>> LocalChunkStore::BeginWrite(const std::string& id,
                                                                 uint64_t size, uint64_t checksum) {
  if (!ValidChunkId(id)) return Err(BadId(id));
  if (Status st = CheckSticky(); !st.ok()) return Err(st);
  if (size > options_.max_chunk_bytes) {
    return Err(TooLarge(
        fmt::format("chunk of {} bytes exceeds the limit of {}", size, options_.max_chunk_bytes)));
  }
  if (auto e = Lookup(id); e && (e->size != size || e->checksum != checksum)) {
    return Err(Conflict(fmt::format("chunk {} exists with different content", id)));
  }
  uint64_t file_bytes = kChunkHeaderSize + size;
  WHARF_ASSIGN_OR_RETURN(size_t dir, ReserveSpace(file_bytes));
  ChunkHeader header{size, checksum};
  std::string tmp = TmpDir(dir) + "/" + id + "." + RandomHex(8);
  const bool direct = options_.direct_io_min_bytes > 0 && size >= options_.direct_io_min_bytes;
  auto file = env_->NewWritableFile(tmp, direct ? WriteMode::kDirect : WriteMode::kBuffered);
  Status st = file ? Status::Ok() : file.error();
  if (st.ok()) {
    auto buf = EncodeChunkHeader(header);
    st = (*file)->Append(buf.data(), buf.size());
    if (!st.ok()) {
      file->reset();
      env_->Remove(tmp).IgnoreError();
    }
  }
  if (!st.ok()) {
    ReleaseSpace(dir, file_bytes);
    counters_->write_failures.Inc();
    return Err(NoteWriteFault(st));
  }
  return std::unique_ptr<ChunkWriter>(
      std::make_unique<LocalChunkWriter>(this, id, dir, header, tmp, std::move(*file)));
}

Status LocalChunkStore::Publish(const std::string& id, size_t dir, const std::string& tmp_path,
                                const ChunkHeader& header) {
  std::unique_lock lock(mu_);
  BeginMutation(lock, id);
  Status st = sticky_;
  if (st.ok()) {
    if (auto it = index_.find(id); it != index_.end()) {
      bool same = it->second.size == header.size && it->second.checksum == header.checksum;
      st =
          same ? Status::Ok() : Conflict(fmt::format("chunk {} exists with different content", id));
      lock.unlock();
      env_->Remove(tmp_path).IgnoreError();  // the existing copy stays
      EndMutation(id);
      return st;
    }
  }
  lock.unlock();
  st = st.ok() ? RenameIntoPlace(id, dir, header.size, tmp_path) : st;
  if (!st.ok()) env_->Remove(tmp_path).IgnoreError();  // kNotFound once renamed
  if (st.ok()) {
    std::lock_guard relock(mu_);
    index_[id] = Entry{dir, header.size, header.checksum, NowUnix()};
    IndexChangedLocked(id);
  }
  EndMutation(id);
  return st;
}

// Called with `id` marked as mutating (so no other commit/delete of it runs), mu_ unlocked.
Status LocalChunkStore::RenameIntoPlace(const std::string& id, size_t dir, uint64_t chunk_bytes,
                                        const std::string& tmp_path) {
  if (Status st = EnsureSubdir(dir, id); !st.ok()) return NoteWriteFault(st);
  std::string path = ChunkPath(dir, id);
  if (Status st = env_->Rename(tmp_path, path); !st.ok()) return NoteWriteFault(st);
  Status st = SyncChunkRename(dir, chunk_bytes, ChunkDir(dir, id));
  if (!st.ok()) {
    // The rename may or may not survive a crash: do not serve it now; a restart's scan will
    // find the complete, synced file if it did survive.
    env_->Remove(path).IgnoreError();
    return SetSticky(st);
  }
  return Status::Ok();
}

Status LocalChunkStore::GroupSync(size_t dir) {
  return sync_groups_[dir]->Sync([&] {
    counters_->group_syncs.Inc();
    return env_->SyncFileSystem(dirs_[dir]);
  });
}

bool LocalChunkStore::GroupSyncs(uint64_t chunk_bytes) const {
  return options_.sync == Options::Sync::kGroup && chunk_bytes >= options_.group_sync_min_bytes;
}

Status LocalChunkStore::SyncChunkData(size_t dir, uint64_t chunk_bytes, WritableFile* file) {
  return Timed(counters_->fsync_seconds,
               [&] { return GroupSyncs(chunk_bytes) ? GroupSync(dir) : file->Sync(); });
}

Status LocalChunkStore::SyncChunkRename(size_t dir, uint64_t chunk_bytes,
                                        const std::string& parent) {
  return Timed(counters_->fsync_seconds,
               [&] { return GroupSyncs(chunk_bytes) ? GroupSync(dir) : env_->SyncDir(parent); });
}

// Creates <dir>/chunks/<id[0:2]> durably the first time a chunk needs it.
Status LocalChunkStore::EnsureSubdir(size_t dir, const std::string& id) {
  size_t sub = SubdirIndex(id);
  {
    std::lock_guard lock(mu_);
    if (subdirs_[dir].test(sub)) return Status::Ok();
  }
  WHARF_RETURN_IF_ERROR(env_->CreateDirs(ChunkDir(dir, id)));
  std::string chunks = dirs_[dir] + "/chunks";
  Status st = Timed(counters_->fsync_seconds, [&] { return env_->SyncDir(chunks); });
  if (!st.ok()) return SetSticky(st);
  std::lock_guard lock(mu_);
  subdirs_[dir].set(sub);
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------
// Reading.

Result<LocalChunkStore::Entry> LocalChunkStore::Lookup(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = index_.find(id);
  if (it == index_.end()) return Err(NotFound("chunk " + id));
  return it->second;
}

Result<ChunkInfo> LocalChunkStore::Stat(const std::string& id) {
  if (!ValidChunkId(id)) return Err(BadId(id));
  WHARF_ASSIGN_OR_RETURN(Entry e, Lookup(id));
  return ChunkInfo{id, e.size, e.checksum, e.mtime_unix};
}

Result<OpenChunk> LocalChunkStore::OpenEntry(const std::string& id, const Entry& e) {
  std::string path = ChunkPath(e.dir, id);
  WHARF_ASSIGN_OR_RETURN(int fd, env_->OpenReadOnly(path));
  OpenChunk chunk(fd, kChunkHeaderSize, e.size, e.checksum, env_);
  char buf[kChunkHeaderSize];
  auto n = env_->ReadAt(fd, 0, buf, sizeof buf);
  if (!n) return Err(IOError("read header " + path + ": " + n.error().message()));
  auto st = env_->StatFile(fd);
  if (!st) return Err(IOError(path + ": " + st.error().message()));
  auto header = DecodeChunkHeader(buf, *n);
  Status bad;
  if (!header) {
    bad = header.error();
  } else if (header->size != e.size || header->checksum != e.checksum) {
    bad = Corruption("chunk header disagrees with the index");
  } else if (st->size != kChunkHeaderSize + e.size) {
    bad = Corruption(fmt::format("chunk file is {} bytes, header says {} + {}", st->size,
                                 kChunkHeaderSize, e.size));
  }
  if (!bad.ok()) {
    counters_->corrupt.Inc();
    log_->warn("corrupt chunk id={} path={} err={}", id, path, bad);
    return Err(Corruption(fmt::format("chunk {}: {}", id, bad.message())));
  }
  return chunk;
}

Result<OpenChunk> LocalChunkStore::Open(const std::string& id) {
  if (!ValidChunkId(id)) return Err(BadId(id));
  WHARF_ASSIGN_OR_RETURN(Entry e, Lookup(id));
  return OpenEntry(id, e);
}

Result<std::string> LocalChunkStore::ReadRange(const std::string& id, uint64_t offset,
                                               uint64_t len) {
  WHARF_ASSIGN_OR_RETURN(OpenChunk chunk, Open(id));
  return chunk.Read(offset, len);
}

Result<std::vector<ChunkInfo>> LocalChunkStore::List(std::string_view after, size_t limit) {
  std::vector<ChunkInfo> out;
  std::lock_guard lock(mu_);
  for (auto it = index_.upper_bound(std::string(after)); it != index_.end() && out.size() < limit;
       ++it) {
    out.push_back(
        ChunkInfo{it->first, it->second.size, it->second.checksum, it->second.mtime_unix});
  }
  return out;
}

uint64_t LocalChunkStore::Count() {
  std::lock_guard lock(mu_);
  return index_.size();
}

Result<RangeDigests> LocalChunkStore::Digests() {
  std::unique_lock lock(mu_);
  for (size_t r = 0; r < kDigestRanges; ++r) {
    if (!digests_stale_.test(r)) continue;
    RangeDigester digester;
    const std::string prefix = RangePrefix(r);
    for (auto it = index_.lower_bound(prefix);
         it != index_.end() && it->first.compare(0, 2, prefix) == 0; ++it) {
      digester.Add(it->first);
    }
    const RangeDigests one = digester.Finish();
    digests_.digests[r] = one.digests[r];
    digests_.counts[r] = one.counts[r];
    digests_stale_.reset(r);
    counters_->digest_ranges.Inc();
    lock.unlock();  // one range at a time under the lock
    lock.lock();
  }
  return digests_;
}

Result<ChunkInfo> LocalChunkStore::Verify(const std::string& id) {
  if (!ValidChunkId(id)) return Err(BadId(id));
  WHARF_ASSIGN_OR_RETURN(Entry e, Lookup(id));
  WHARF_ASSIGN_OR_RETURN(OpenChunk chunk, OpenEntry(id, e));
  Checksummer hasher;
  std::string buf(1 << 20, '\0');
  uint64_t off = 0;
  while (off < chunk.size()) {
    uint64_t want = std::min<uint64_t>(buf.size(), chunk.size() - off);
    auto n = env_->ReadAt(chunk.fd(), kChunkHeaderSize + off, buf.data(), want);
    if (!n) return Err(IOError("read chunk " + id + ": " + n.error().message()));
    if (*n == 0) return Err(Corruption("chunk " + id + ": file shrank while verifying"));
    hasher.Update(buf.data(), *n);
    off += *n;
  }
  if (hasher.Value() != e.checksum) {
    counters_->corrupt.Inc();
    log_->warn("corrupt chunk id={} dir={} want={} got={}", id, dirs_[e.dir],
               FormatChecksum(e.checksum), FormatChecksum(hasher.Value()));
    return Err(Corruption(fmt::format("chunk {}: data hashes to {}, stored {}", id,
                                      FormatChecksum(hasher.Value()), FormatChecksum(e.checksum))));
  }
  return ChunkInfo{id, e.size, e.checksum, e.mtime_unix};
}

// ---------------------------------------------------------------------------------------
// Removing.

Status LocalChunkStore::Delete(const std::string& id) {
  if (!ValidChunkId(id)) return BadId(id);
  std::unique_lock lock(mu_);
  BeginMutation(lock, id);
  Status st = sticky_;
  auto it = index_.find(id);
  if (st.ok() && it == index_.end()) st = NotFound("chunk " + id);
  if (!st.ok()) {
    lock.unlock();
    EndMutation(id);
    return st;
  }
  Entry e = it->second;
  lock.unlock();
  st = env_->Remove(ChunkPath(e.dir, id));
  if (st.ok() || st.code() == Code::kNotFound) {
    std::string parent = ChunkDir(e.dir, id);
    st = Timed(counters_->fsync_seconds, [&] { return env_->SyncDir(parent); });
    if (!st.ok()) SetSticky(st).IgnoreError();
    lock.lock();
    index_.erase(id);  // the file is gone either way
    IndexChangedLocked(id);
    lock.unlock();
  }
  EndMutation(id);
  return st;
}

Status LocalChunkStore::Quarantine(const std::string& id) {
  if (!ValidChunkId(id)) return BadId(id);
  std::unique_lock lock(mu_);
  BeginMutation(lock, id);
  auto it = index_.find(id);
  if (it == index_.end()) {
    lock.unlock();
    EndMutation(id);
    return NotFound("chunk " + id);
  }
  Entry e = it->second;
  index_.erase(it);  // stop serving it first, even if the move below fails
  IndexChangedLocked(id);
  lock.unlock();
  Status st = MoveToQuarantine(e.dir, ChunkPath(e.dir, id), id);
  EndMutation(id);
  return st;
}

Status LocalChunkStore::MoveToQuarantine(size_t dir, const std::string& path,
                                         const std::string& id) {
  std::string qdir = dirs_[dir] + "/quarantine";
  std::string dest = fmt::format("{}/{}.{}.{}", qdir, id, NowUnix(), RandomHex(2));
  Status st = env_->Rename(path, dest);
  if (st.ok()) st = env_->SyncDir(qdir);
  if (st.ok()) st = env_->SyncDir(std::filesystem::path(path).parent_path().string());
  if (!st.ok()) {
    log_->error("quarantine failed id={} path={} err={}", id, path, st);
    return st;
  }
  counters_->quarantined.Inc();
  log_->warn("chunk quarantined id={} to={}", id, dest);
  return Status::Ok();
}

std::string LocalChunkStore::ChunkDir(size_t dir, const std::string& id) const {
  return dirs_[dir] + "/chunks/" + id.substr(0, 2);
}

std::string LocalChunkStore::ChunkPath(size_t dir, const std::string& id) const {
  return ChunkDir(dir, id) + "/" + id;
}

std::string LocalChunkStore::ChunkPathForTest(const std::string& id) {
  if (!ValidChunkId(id)) return "";
  auto e = Lookup(id);
  return e ? ChunkPath(e->dir, id) : "";
}

}  // namespace wharf
