// Gateway: the admin views, behind the "admin" action of the access policy (auth_filter.h).
//
//   GET /admin/queue   the site's write queue (admin_queue.cc)
//   GET /admin/replication   the replication jobs and pull rules (admin_queue.cc)
//   GET /admin/gc   what garbage collection did and could do:
//     {"gateway": "host:5000",                   this gateway's name (the lease holder name)
//      "store_id": "ms-...", "namespace_confirmed": true,
//      "lease": {"name": "background", "holder": "host:5001", "expires_unix": N,
//                "held_here": false},
//      "settings": {"interval_ms": N, "grace_seconds": N, "untagged_after_seconds": N|null},
//      "last_round": null | {"finished_unix": N, "seconds": X, and GcReportJson's counts:
//                            "manifests", "blob_links", "blobs", "blob_bytes",
//                            "chunks_released", "chunks_deleted", "bytes_deleted",
//                            "uploads_expired", ...},
//      "stored": {"blobs": N, "blob_bytes": N, "manifests": N, "manifest_bytes": N,
//                 "files": N, "file_bytes": N, "bytes": N},
//      "reclaimable": {"manifests": N, "blob_links": N, "blobs": N, "blob_bytes": N,
//                      "garbage_chunks": N, "garbage_bytes": N, "bytes": N}}
//
// last_round is the last round THIS gateway ran (only the lease holder runs them). stored is
// what the metadata store holds now (MetaStore::GetStoredTotals, counted for this request;
// "bytes" = blob_bytes + manifest_bytes + file_bytes). reclaimable is the collector's dry run
// now (GarbageCollector::DryRun, reading only): what a pass would free with the gateway's grace
// and untagged settings; "bytes" = blob_bytes + garbage_bytes. Both scan the store, so the view
// is not for polling.
#include <nlohmann/json.hpp>

#include "common/async.h"
#include "gateway/gateway.h"
#include "gateway/gc_report_json.h"
#include "http/status_http.h"

namespace wharf {
namespace {

using json = nlohmann::json;

json RoundJson(int64_t finished_unix, double seconds, const GcReport& r) {
  json j = GcReportJson(r);
  j["finished_unix"] = finished_unix;
  j["seconds"] = seconds;
  return j;
}

}  // namespace

awaitable<void> Gateway::HandleAdminGc(Exchange& ex) {
  if (ex.path() == "/admin/queue") {
    co_await HandleAdminQueue(ex);
    co_return;
  }
  if (ex.path() == "/admin/replication") {
    co_await HandleAdminReplication(ex);
    co_return;
  }
  if (ex.path() != "/admin/gc") {
    co_await RespondError(ex, NotFound("no such endpoint"));
    co_return;
  }
  if (ex.method() != http::verb::get && ex.method() != http::verb::head) {
    ex.AddHeader("Allow", "GET, HEAD");
    co_await RespondError(ex, Status(Code::kUnsupported, "GET only"));
    co_return;
  }
  auto dry = co_await gc_->DryRun();
  if (!dry) {
    ctx_.log->warn("admin gc: dry run failed request_id={} err={}", ex.request_id(), dry.error());
    co_await RespondError(ex, Unavailable("the metadata store did not answer the dry run"));
    co_return;
  }
  MetaStore* meta = meta_.get();
  auto count = [meta] { return meta->GetStoredTotals(); };
  Result<StoredTotals> stored = co_await Offload(count);
  if (!stored) {
    ctx_.log->warn("admin gc: counting what is stored failed request_id={} err={}", ex.request_id(),
                   stored.error());
    co_await RespondError(ex, Unavailable("the metadata store did not count what it holds"));
    co_return;
  }
  json body;
  body["gateway"] = instance_;
  body["store_id"] = store_id_;
  body["namespace_confirmed"] = namespace_confirmed_;
  body["lease"] = {{"name", "background"},
                   {"holder", lease_.holder},
                   {"expires_unix", lease_.expires_unix},
                   {"held_here", lease_.held}};
  body["settings"] = {
      {"interval_ms", options_.gc_interval.count()},
      {"grace_seconds", options_.gc_grace.count()},
      {"untagged_after_seconds",
       options_.gc_untagged_after ? json(options_.gc_untagged_after->count()) : json(nullptr)}};
  body["last_round"] =
      last_round_ ? RoundJson(last_round_->finished_unix, last_round_->seconds, last_round_->report)
                  : json(nullptr);
  const StoredTotals& t = *stored;
  body["stored"] = {{"blobs", t.blobs},
                    {"blob_bytes", t.blob_bytes},
                    {"manifests", t.manifests},
                    {"manifest_bytes", t.manifest_bytes},
                    {"files", t.files},
                    {"file_bytes", t.file_bytes},
                    {"bytes", t.blob_bytes + t.manifest_bytes + t.file_bytes}};
  const GcReport& r = *dry;
  body["reclaimable"] = {{"manifests", r.manifests},
                         {"blob_links", r.links},
                         {"blobs", r.blobs},
                         {"blob_bytes", r.blob_bytes},
                         {"garbage_chunks", r.chunks_pending},
                         {"garbage_bytes", r.bytes_pending},
                         {"bytes", r.blob_bytes + r.bytes_pending}};
  (void)co_await ex.Respond(http::status::ok, body.dump());
}

}  // namespace wharf
