package app

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
)

// sink keeps the test's garbage from being optimised away before it is dropped.
var sink []byte

// POST /debug/free-os-memory on the debug listener hands the heap's free pages back to the
// OS, which a collection alone does not: memory measurements read VmRSS after it.
func TestDebugFreesOSMemory(t *testing.T) {
	mux := debugMux()
	sink = make([]byte, 64<<20)
	for i := range sink {
		sink[i] = 1 // touched, so resident
	}
	sink = nil
	runtime.GC()

	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/debug/free-os-memory", nil))
	if w.Code != http.StatusNoContent {
		t.Fatalf("POST /debug/free-os-memory = %d, want 204", w.Code)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if kept := ms.HeapIdle - ms.HeapReleased; kept > 16<<20 {
		t.Errorf("%d MiB of free heap still held after the call; want it handed back", kept>>20)
	}

	w = httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/debug/free-os-memory", nil))
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET /debug/free-os-memory = %d, want 405", w.Code)
	}
}
