// Chunk ids moved to common/chunk_id.h (the gateway chooses them, chunkservers validate them).
// This header stays for code written against the old path.
#pragma once

#include "common/chunk_id.h"
