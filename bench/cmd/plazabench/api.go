package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	plazav1 "plaza/api/proto/plaza/v1"
)

// api is the few calls the harness makes to set a run up: register, log in, list ids.
type api struct {
	base   string // http://127.0.0.1:port
	client *http.Client
}

// do sends body as JSON (when not nil) and returns the status and the answer's body.
func (a api) do(ctx context.Context, method, path, token string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, b, err
}

// call is do for an answer that must be 2xx; it decodes that answer into out (when not
// nil). Any other status is a *statusError.
func (a api) call(ctx context.Context, method, path, token string, body, out any) error {
	status, b, err := a.do(ctx, method, path, token, body)
	if err != nil {
		return err
	}
	if status/100 != 2 {
		return &statusError{method: method, path: path, status: status, body: string(b[:min(len(b), 300)])}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decoding the answer: %w", method, path, err)
		}
	}
	return nil
}

type statusError struct {
	method, path string
	status       int
	body         string
}

// Error quotes the problem body's detail when the answer was one, else the body's start.
func (e *statusError) Error() string {
	var problem struct {
		Detail string `json:"detail"`
	}
	msg := e.body
	if json.Unmarshal([]byte(e.body), &problem) == nil && problem.Detail != "" {
		msg = problem.Detail
	}
	return fmt.Sprintf("%s %s answered %d (%s)", e.method, e.path, e.status, strings.TrimSpace(msg))
}

type tokens struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
}

func (a api) register(ctx context.Context, name, email, password string) error {
	return a.call(ctx, http.MethodPost, "/api/users", "",
		map[string]string{"name": name, "email": email, "password": password}, nil)
}

func (a api) login(ctx context.Context, email, password string) (string, error) {
	var t tokens
	if err := a.call(ctx, http.MethodPost, "/api/auth/login", "",
		map[string]string{"email": email, "password": password}, &t); err != nil {
		return "", err
	}
	if t.AccessToken == "" {
		return "", fmt.Errorf("POST /api/auth/login answered no access_token")
	}
	return t.AccessToken, nil
}

// productIDs walks the product list, newest first, until it has n ids or the list ends.
func (a api) productIDs(ctx context.Context, n int) ([]string, error) {
	var ids []string
	cursor := ""
	for len(ids) < n {
		q := url.Values{"limit": {"100"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page struct {
			Items []struct {
				ID string `json:"id"`
			} `json:"items"`
			NextCursor string `json:"next_cursor"`
		}
		if err := a.call(ctx, http.MethodGet, "/api/products?"+q.Encode(), "", nil, &page); err != nil {
			return ids, err
		}
		for _, it := range page.Items {
			ids = append(ids, it.ID)
		}
		if page.NextCursor == "" || len(page.Items) == 0 {
			break
		}
		cursor = page.NextCursor
	}
	return ids[:min(len(ids), n)], nil
}

// grpcProbe reads product id once over gRPC, as productload will.
func grpcProbe(ctx context.Context, addr, id string) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := plazav1.NewProductServiceClient(conn).GetProduct(ctx, &plazav1.GetProductRequest{Id: id}); err != nil {
		return fmt.Errorf("GetProduct over gRPC: %w", err)
	}
	return nil
}

// productQueryText asks for the fields REST's product answer holds.
const productQueryText = `query($id:ID!){product(id:$id){id name description priceCents currency category subcategory stock version createdAt updatedAt}}`

// productQuery is the body of the GraphQL scenario: productQueryText for product id.
func productQuery(id string) []byte {
	b, _ := json.Marshal(map[string]any{"query": productQueryText, "variables": map[string]string{"id": id}})
	return b
}

// graphQLProbe sends the GraphQL scenario's query once and wants the product back: GraphQL
// reports most failures in a 200 answer's errors.
func graphQLProbe(ctx context.Context, a api, id string) error {
	var answer struct {
		Data struct {
			Product *struct {
				ID string `json:"id"`
			} `json:"product"`
		} `json:"data"`
		Errors []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := a.call(ctx, http.MethodPost, "/graphql", "", json.RawMessage(productQuery(id)), &answer); err != nil {
		return err
	}
	if len(answer.Errors) > 0 {
		return fmt.Errorf("POST /graphql answered errors: %s", answer.Errors[0].Message)
	}
	if answer.Data.Product == nil || answer.Data.Product.ID != id {
		return fmt.Errorf("POST /graphql answered no product %s", id)
	}
	return nil
}
