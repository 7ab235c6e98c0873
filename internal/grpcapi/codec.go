package grpcapi

import (
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
)

// encodedMessage is a response message already in its wire form, which codec sends as it
// is. Its bytes are shared by every call that sends them and are never changed.
type encodedMessage struct {
	buf mem.Buffer
}

func newEncodedMessage(b []byte) *encodedMessage {
	return &encodedMessage{buf: mem.SliceBuffer(b)}
}

// codec is grpc's proto codec, except that an *encodedMessage is sent without marshaling
// anything. This server installs it with grpc.ForceServerCodecV2 (it is not registered
// globally, so clients in the same process keep the plain codec). Forcing it changes no
// other behaviour: proto is the only codec registered, and grpc falls back to proto for
// any other content-subtype.
type codec struct {
	encoding.CodecV2
}

func newCodec() codec { return codec{encoding.GetCodecV2(proto.Name)} }

// Marshal returns m's bytes for an *encodedMessage: a mem.SliceBuffer, whose Ref and
// Free do nothing, so grpc's freeing it after the write leaves the shared bytes alone.
func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	if m, ok := v.(*encodedMessage); ok {
		return mem.BufferSlice{m.buf}, nil
	}
	return c.CodecV2.Marshal(v)
}
