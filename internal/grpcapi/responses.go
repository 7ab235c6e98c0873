package grpcapi

import (
	"container/list"
	"hash/maphash"
	"sync"
)

// responseCacheBytes bounds the encoded GetProduct responses kept (responses): 16 MiB,
// tens of thousands of typical products (a few hundred bytes each), a few thousand of the
// largest (a 5,000-character description). Past it the least recently read goes.
const responseCacheBytes = 16 << 20

// responses keeps GetProduct's response per product, encoded, together with what it was
// built from: the entity tag and a hash of the JSON of the cached catalog entry. A read
// looks the entry up first (as REST does), so a response is sent only while that entry is
// the one it was built from: a write changes the tag (every write adds one to the version)
// and the JSON, and the next read rebuilds it. No invalidation is needed, and none can be
// missed. It is safe for concurrent use.
type responses struct {
	seed maphash.Seed
	max  int

	mu    sync.Mutex
	size  int
	order list.List // of *response, the most recently read first
	byID  map[string]*list.Element
}

type response struct {
	id, etag string
	sum      uint64
	msg      *encodedMessage
	size     int
}

// entryOverhead approximates what an entry costs besides its strings and bytes: the map
// slot, the list element and the response.
const entryOverhead = 160

func newResponses(maxBytes int) *responses {
	return &responses{seed: maphash.MakeSeed(), max: maxBytes, byID: map[string]*list.Element{}}
}

// sum is the hash of a catalog entry's JSON that get and put compare.
func (r *responses) sum(json []byte) uint64 { return maphash.Bytes(r.seed, json) }

// get returns product id's response if it was built from the entry with etag and sum.
func (r *responses) get(id, etag string, sum uint64) (*encodedMessage, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	el, ok := r.byID[id]
	if !ok {
		return nil, false
	}
	e := el.Value.(*response)
	if e.etag != etag || e.sum != sum {
		return nil, false
	}
	r.order.MoveToFront(el)
	return e.msg, true
}

// put keeps b as product id's response for the entry with etag and sum, in place of any
// other version's, and evicts the least recently read beyond the bound.
func (r *responses) put(id, etag string, sum uint64, b []byte) *encodedMessage {
	e := &response{id: id, etag: etag, sum: sum, msg: newEncodedMessage(b), size: len(id) + len(etag) + len(b) + entryOverhead}
	r.mu.Lock()
	defer r.mu.Unlock()
	if el, ok := r.byID[id]; ok {
		r.remove(el)
	}
	if e.size <= r.max {
		r.byID[id] = r.order.PushFront(e)
		r.size += e.size
	}
	for r.size > r.max {
		r.remove(r.order.Back())
	}
	return e.msg
}

func (r *responses) remove(el *list.Element) {
	e := r.order.Remove(el).(*response)
	delete(r.byID, e.id)
	r.size -= e.size
}
