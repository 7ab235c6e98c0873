package realtime

import (
	"encoding/json"
	"testing"

	"plaza/internal/plaza"
)

// FuzzDecodeFrame: whatever a client sends, the decoder answers a frame or a bad_request,
// never panics, and a frame it accepts is one of the known types with what that type
// needs, and reads back the same after encoding.
func FuzzDecodeFrame(f *testing.F) {
	for _, seed := range []string{
		`{"type":"join","room":"general"}`,
		`{"type":"join","room":"general","since":"0190c2d5-0000-7000-8000-000000000000"}`,
		`{"type":"leave","room":"general"}`,
		`{"type":"message","room":"general","text":"hi","client_id":"c1"}`,
		`{"type":"typing","room":"general"}`,
		`{"type":"ping"}`,
		`{"type":"ping","room":"x"}`,
		`{"type":"message","room":"general","text":5}`,
		`{"type":"nope"}`,
		`{"type":"join"}`,
		`{"type":"join","room":"a"} {}`,
		`[]`, `null`, `"ping"`, ``, `{`, `{"type":"join","room":"a","extra":1}`,
		`{"type":"join","type":"ping"}`, "{\"type\":\"message\",\"room\":\"r\",\"text\":\"\\ud800\"}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := decodeFrame(b)
		if err != nil {
			if plaza.ErrorCodeOf(err) != plaza.EBadRequest {
				t.Fatalf("decodeFrame(%q) = %v, want a bad_request", b, err)
			}
			return
		}
		switch fr.Type {
		case frameJoin, frameLeave, frameMessage, frameTyping:
			if fr.Room == "" {
				t.Fatalf("accepted %q without a room", b)
			}
		case framePing:
		default:
			t.Fatalf("accepted unknown type %q from %q", fr.Type, b)
		}
		again, err := decodeFrame(mustEncode(fr))
		if err != nil || again != fr {
			t.Fatalf("round trip of %q: %+v, %v; want %+v", b, again, err, fr)
		}
	})
}

func TestDecodeFrameNamesTheProblem(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`{"type":"shout","room":"a"}`:        `unknown frame type "shout"`,
		`{"type":"join"}`:                    "a join frame needs a room",
		`{"type":"ping","text":"x"}`:         `a ping frame has no field "text"`,
		`{"type":"join","room":1}`:           `field "room" must be a string`,
		`{"type":"join","room":"a","x":"y"}`: `unknown field "x"`,
		`not json`:                           "a frame must be one JSON object",
		`{"type":"ping"}{"type":"ping"}`:     "a frame must be one JSON object",
	} {
		_, err := decodeFrame([]byte(in))
		var e *plaza.Error
		if b, _ := json.Marshal(err); err == nil || !asError(err, &e) || e.Message != want {
			t.Errorf("decodeFrame(%s) = %v (%s), want %q", in, err, b, want)
		}
	}
}

func asError(err error, e **plaza.Error) bool {
	pe, ok := err.(*plaza.Error)
	*e = pe
	return ok
}
