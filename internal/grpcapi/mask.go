package grpcapi

import (
	"errors"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"plaza/internal/plaza"
)

// paths are the fields an update changes: those update_mask names ("*" standing for
// star, a full replacement), or without a mask those of all the client populated. A path
// outside all is a bad_request naming update_mask.
func paths(mask *fieldmaskpb.FieldMask, all, star []string, populated func(path string) bool) ([]string, error) {
	if mask == nil {
		return slices.DeleteFunc(slices.Clone(all), func(p string) bool { return !populated(p) }), nil
	}
	if slices.Equal(mask.GetPaths(), []string{"*"}) {
		return star, nil
	}
	var out []string
	for _, p := range mask.GetPaths() {
		switch {
		case !slices.Contains(all, p):
			return nil, plaza.BadParam("update_mask", "update_mask names "+strconv.Quote(p)+", which cannot be updated; paths: "+strings.Join(all, ", ")+", or * alone")
		case !slices.Contains(out, p):
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, plaza.BadParam("update_mask", "update_mask names no field; leave it out to update the fields you set")
	}
	return out, nil
}

// renamed returns err with the fields of its field errors named as this API names them
// (a page's "limit" is page_size here), so a violation points at a request field.
func renamed(err error, names map[string]string) error {
	var pe *plaza.Error
	if !errors.As(err, &pe) || len(pe.Fields) == 0 {
		return err
	}
	out := *pe
	out.Fields = slices.Clone(pe.Fields)
	for i, f := range out.Fields {
		if n, ok := names[f.Field]; ok {
			out.Fields[i].Field = n
		}
	}
	return &out
}

// pageFields are the request fields of a page.
var pageFields = map[string]string{"limit": "page_size", "cursor": "page_token", "before": "page_token"}
