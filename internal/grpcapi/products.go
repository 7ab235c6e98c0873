package grpcapi

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	plazav1 "plaza/api/proto/plaza/v1"
	"plaza/internal/bus"
	"plaza/internal/catalog"
	"plaza/internal/etag"
	"plaza/internal/plaza"
)

// productService is plaza.v1.ProductService.
type productService struct {
	s *Server
}

// GetProduct builds the response from the product decoded. grpc does not call it:
// GetProduct calls reach getProduct (productServiceDesc), which sends the same response
// already encoded, and falls back to this for a cache entry it cannot read.
func (ps productService) GetProduct(ctx context.Context, req *plazav1.GetProductRequest) (*plazav1.GetProductResponse, error) {
	p, err := ps.s.opts.Catalog.Product(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	return &plazav1.GetProductResponse{Product: productPB(p)}, nil
}

// getProduct answers GetProduct from the product's cache entry, as REST's GET does: the
// entry is read on every call (so a write shows here when it shows on REST), and the encoded
// response built from that very entry is sent when it is kept (responses), so a hit
// decodes nothing and marshals nothing. A miss builds it as GetProduct would and keeps it.
func (ps productService) getProduct(ctx context.Context, req *plazav1.GetProductRequest) (*encodedMessage, error) {
	id := req.GetId()
	enc, err := ps.s.opts.Catalog.ProductJSON(ctx, id)
	if err != nil {
		return nil, err
	}
	sum := ps.s.responses.sum(enc.JSON)
	if msg, ok := ps.s.responses.get(id, enc.ETag, sum); ok {
		return msg, nil
	}
	var p catalog.Product
	if err := json.Unmarshal(enc.JSON, &p); err != nil {
		// Not an entry this version can read: GetProduct goes to the service.
		resp, err := ps.GetProduct(ctx, req)
		if err != nil {
			return nil, err
		}
		b, err := proto.Marshal(resp)
		if err != nil {
			return nil, err
		}
		return newEncodedMessage(b), nil
	}
	b, err := proto.Marshal(&plazav1.GetProductResponse{Product: productPB(p)})
	if err != nil {
		return nil, err
	}
	return ps.s.responses.put(id, enc.ETag, sum, b), nil
}

// productServiceDesc is plaza.v1.ProductService with GetProduct served by getProduct,
// through the same interceptor chain as every other call; the other methods are the
// generated ones.
func productServiceDesc(ps productService) *grpc.ServiceDesc {
	desc := plazav1.ProductService_ServiceDesc
	desc.Methods = slices.Clone(desc.Methods)
	info := &grpc.UnaryServerInfo{Server: ps, FullMethod: plazav1.ProductService_GetProduct_FullMethodName}
	get := func(ctx context.Context, req any) (any, error) {
		msg, err := ps.getProduct(ctx, req.(*plazav1.GetProductRequest))
		if err != nil {
			return nil, err
		}
		return msg, nil
	}
	for i, m := range desc.Methods {
		if "/"+desc.ServiceName+"/"+m.MethodName != info.FullMethod {
			continue
		}
		desc.Methods[i].Handler = func(_ any, ctx context.Context, dec func(any) error, chain grpc.UnaryServerInterceptor) (any, error) {
			req := new(plazav1.GetProductRequest)
			if err := dec(req); err != nil {
				return nil, err
			}
			if chain == nil {
				return get(ctx, req)
			}
			return chain(ctx, req, info, get)
		}
		return &desc
	}
	panic("grpcapi: " + info.FullMethod + " is not in the generated service description")
}

func (ps productService) ListProducts(ctx context.Context, req *plazav1.ListProductsRequest) (*plazav1.ListProductsResponse, error) {
	page, err := ps.s.opts.Catalog.List(ctx, catalog.Filter{
		Category: req.GetCategory(), Subcategory: req.GetSubcategory(), Q: req.GetQ(),
		MinPrice: req.MinPrice, MaxPrice: req.MaxPrice, InStock: req.InStock,
		Sort: catalog.Sort(req.GetSort()), Limit: int(req.GetPageSize()), Cursor: req.GetPageToken(),
	})
	if err != nil {
		return nil, renamed(err, pageFields)
	}
	out := &plazav1.ListProductsResponse{Products: make([]*plazav1.Product, len(page.Items)), NextPageToken: page.NextCursor}
	for i, p := range page.Items {
		out.Products[i] = productPB(p)
	}
	return out, nil
}

func (ps productService) CreateProduct(ctx context.Context, req *plazav1.CreateProductRequest) (*plazav1.CreateProductResponse, error) {
	p, err := ps.s.opts.Catalog.Create(ctx, input(req.GetProduct()))
	if err != nil {
		return nil, err
	}
	return &plazav1.CreateProductResponse{Product: productPB(p)}, nil
}

// productPaths are what UpdateProduct may change.
var productPaths = []string{"name", "description", "price_cents", "currency", "category", "subcategory", "stock"}

func (ps productService) UpdateProduct(ctx context.Context, req *plazav1.UpdateProductRequest) (*plazav1.UpdateProductResponse, error) {
	in := req.GetProduct()
	if in == nil {
		in = &plazav1.Product{}
	}
	fields, err := paths(req.GetUpdateMask(), productPaths, productPaths, func(p string) bool {
		switch p {
		case "name":
			return in.GetName() != ""
		case "description":
			return in.GetDescription() != ""
		case "price_cents":
			return in.PriceCents != nil
		case "currency":
			return in.GetCurrency() != ""
		case "category":
			return in.GetCategory() != ""
		case "subcategory":
			return in.GetSubcategory() != ""
		}
		return in.GetStock() != 0
	})
	if err != nil {
		return nil, err
	}
	set := input(in)
	p, err := ps.s.opts.Catalog.Patch(ctx, in.GetId(), expect(in.GetId(), req.GetEtag()), func(cur catalog.Input) (catalog.Input, error) {
		for _, f := range fields {
			switch f {
			case "name":
				cur.Name = set.Name
			case "description":
				cur.Description = set.Description
			case "price_cents":
				cur.PriceCents = set.PriceCents
			case "currency":
				cur.Currency = set.Currency
			case "category":
				cur.Category = set.Category
			case "subcategory":
				cur.Subcategory = set.Subcategory
			case "stock":
				cur.Stock = set.Stock
			}
		}
		return cur, nil
	})
	if err != nil {
		return nil, err
	}
	return &plazav1.UpdateProductResponse{Product: productPB(p)}, nil
}

func (ps productService) DeleteProduct(ctx context.Context, req *plazav1.DeleteProductRequest) (*plazav1.DeleteProductResponse, error) {
	if _, err := ps.s.opts.Catalog.Delete(ctx, req.GetId(), expect(req.GetId(), req.GetEtag())); err != nil {
		return nil, err
	}
	return &plazav1.DeleteProductResponse{}, nil
}

// expect is the precondition an etag field places on product id, through the same
// etag.Expect as REST's If-Match: empty is no condition.
func expect(id, tag string) plaza.Expect {
	if tag == "" {
		return etag.Expect(id)
	}
	return etag.Expect(id, tag)
}

var productEvents = map[string]plazav1.ProductEventType{
	catalog.EventCreated: plazav1.ProductEventType_PRODUCT_EVENT_TYPE_CREATED,
	catalog.EventUpdated: plazav1.ProductEventType_PRODUCT_EVENT_TYPE_UPDATED,
	catalog.EventDeleted: plazav1.ProductEventType_PRODUCT_EVENT_TYPE_DELETED,
}

// WatchProducts streams the catalog stream of the bus (every instance's changes) to the
// client, from after_event_id when given. An ID older than the retained history gets a
// RESET event first, carrying the position the stream continues from.
func (ps productService) WatchProducts(req *plazav1.WatchProductsRequest, ss grpc.ServerStreamingServer[plazav1.WatchProductsResponse]) error {
	ctx := ss.Context()
	category := req.GetCategory()
	if category != "" {
		// The category rule of lists, so a typo is an error rather than a silent stream.
		if _, err := (catalog.Filter{Category: category}).Normalize(); err != nil {
			return err
		}
	}
	sub, err := ps.s.opts.Bus.Subscribe(ctx, plaza.StreamCatalog, req.GetAfterEventId())
	if errors.Is(err, bus.ErrTrimmed) {
		now := strconv.FormatInt(time.Now().UnixMilli(), 10) + "-0"
		if sub, err = ps.s.opts.Bus.Subscribe(ctx, plaza.StreamCatalog, now); err == nil {
			err = ss.Send(&plazav1.WatchProductsResponse{EventId: now, Type: plazav1.ProductEventType_PRODUCT_EVENT_TYPE_RESET})
		}
	}
	if err != nil {
		if sub != nil {
			sub.Close()
		}
		if plaza.ErrorCodeOf(err) == plaza.EBadRequest {
			return plaza.BadParam("after_event_id", "after_event_id is not an event ID this server sent")
		}
		return err
	}
	defer sub.Close()
	// The headers tell the client that the stream is live: a change made after they
	// arrive is delivered.
	if err := ss.SendHeader(nil); err != nil {
		return err
	}
	for {
		var ev plaza.Event
		var ok bool
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ps.s.opts.Shutdown.Done():
			return plaza.Errorf(plaza.EUnavailable, "the server is shutting down; resume with after_event_id on another")
		case ev, ok = <-sub.Events():
		}
		if !ok {
			return streamEnded(sub)
		}
		typ, known := productEvents[ev.Type]
		if !known {
			continue
		}
		var p catalog.Product
		if err := json.Unmarshal(ev.Data, &p); err != nil {
			ps.s.log.WarnContext(ctx, "grpc: undecodable product event skipped", "id", ev.ID, "err", err)
			continue
		}
		if category != "" && p.Category != category {
			continue
		}
		if err := ss.Send(&plazav1.WatchProductsResponse{
			EventId: ev.ID, Type: typ, Product: productPB(p), OccurredAt: timestamp(ev.OccurredAt), ActorId: ev.ActorID,
		}); err != nil {
			return err
		}
	}
}

// streamEnded is why a stream ends when its bus subscription did: the client fell behind
// (or the bus closed); either way it resumes where it was.
func streamEnded(sub bus.Subscription) error {
	if errors.Is(sub.Err(), bus.ErrSlowConsumer) {
		return plaza.Errorf(plaza.EUnavailable, "this stream fell behind; resume from the last event you received")
	}
	return plaza.Wrap(plaza.EUnavailable, sub.Err(), "the event stream was interrupted; resume from the last event you received")
}
