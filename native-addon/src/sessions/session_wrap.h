// N-API glue of the session table (session_table.h): class SessionTable. See sessions.ts.
#pragma once

#include <napi.h>

#include "sessions/session_table.h"

namespace gwc {

// Adds SessionTable, sessionRecordSize and sessionKeySize to exports.
void InitSessionTable(Napi::Env env, Napi::Object exports);

// The C++ table behind a JS SessionTable object (for the packet engine), or nullptr when o is not
// one. The caller takes table->mutex() around every use from another thread.
sess::SessionTable* UnwrapSessionTable(Napi::Object o);

}  // namespace gwc
