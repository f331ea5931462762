// Package client is a small Go client of the unirec serving API (POST
// /v1/recommend, /v1/recommend:batch, GET /v1/use-cases, /v1/model). It
// speaks the JSON shapes of package serve and turns error answers into
// *Error values; it never retries on its own, so callers (the load
// benchmark, tests) see exactly what the replica answered.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/unirec/unirec/serve"
)

// Client talks to one replica.
type Client struct {
	base  string
	hc    *http.Client
	token string
}

// New returns a client of the replica at base ("http://host:port"); a nil
// hc uses http.DefaultClient.
func New(base string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	return &Client{base: strings.TrimRight(base, "/"), hc: hc}
}

// WithToken returns a copy of c that sends token as
// "Authorization: Bearer" on every API call, for replicas configured with
// serve.api_token_file or serve.api_token_env. An empty token sends none.
func (c *Client) WithToken(token string) *Client {
	cc := *c
	cc.token = token
	return &cc
}

// Error is an error answer of the API.
type Error struct {
	Status  int
	Message string
	// RetryAfter is the Retry-After of a 429 or 503 answer (0 if none).
	RetryAfter time.Duration
}

func (e *Error) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Status, e.Message) }

// Recommend sends one recommend request.
func (c *Client) Recommend(ctx context.Context, req *serve.Request) (*serve.Response, error) {
	var resp serve.Response
	if err := c.do(ctx, http.MethodPost, "/v1/recommend", req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// RecommendBatch sends several requests in one call; each result has its
// own status.
func (c *Client) RecommendBatch(ctx context.Context, reqs []serve.Request) ([]serve.BatchResult, error) {
	var resp serve.BatchResponse
	if err := c.do(ctx, http.MethodPost, "/v1/recommend:batch", serve.BatchRequest{Requests: reqs}, &resp); err != nil {
		return nil, err
	}
	return resp.Responses, nil
}

// UseCases returns the effective policy of every use case of the replica.
func (c *Client) UseCases(ctx context.Context) ([]serve.UseCaseView, error) {
	var resp struct {
		UseCases []serve.UseCaseView `json:"use_cases"`
	}
	if err := c.do(ctx, http.MethodGet, "/v1/use-cases", nil, &resp); err != nil {
		return nil, err
	}
	return resp.UseCases, nil
}

// ModelStatus is the part of GET /v1/model a client needs.
type ModelStatus struct {
	Version   int64  `json:"version"`
	Ready     bool   `json:"ready"`
	Watermark string `json:"watermark"`
	Items     int    `json:"items"`
	Applied   int64  `json:"applied"` // examples the live model learned from
}

// Model returns the replica's live version.
func (c *Client) Model(ctx context.Context) (*ModelStatus, error) {
	var m ModelStatus
	if err := c.do(ctx, http.MethodGet, "/v1/model", nil, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// Healthz calls GET /healthz: an answer without work, the baseline of
// the HTTP path.
func (c *Client) Healthz(ctx context.Context) error {
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/healthz", nil)
	if err != nil {
		return fmt.Errorf("cannot build request: %w", err)
	}
	resp, err := c.hc.Do(hr)
	if err != nil {
		return fmt.Errorf("cannot call /healthz: %w", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return &Error{Status: resp.StatusCode, Message: "not healthy"}
	}
	return nil
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("cannot encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	hr, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("cannot build request: %w", err)
	}
	if in != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		hr.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(hr)
	if err != nil {
		return fmt.Errorf("cannot call %s: %w", path, err)
	}
	defer resp.Body.Close()
	raw, err := readBody(resp)
	if err != nil {
		return fmt.Errorf("cannot read answer of %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		e := &Error{Status: resp.StatusCode, Message: strings.TrimSpace(string(raw))}
		var body struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(raw, &body) == nil && body.Error != "" {
			e.Message = body.Error
		}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
			e.RetryAfter = time.Duration(s) * time.Second
		}
		return e
	}
	if r, ok := out.(*serve.Response); ok {
		err = decodeResponse(raw, r)
	} else {
		err = json.Unmarshal(raw, out)
	}
	if err != nil {
		return fmt.Errorf("cannot decode answer of %s: %w", path, err)
	}
	return nil
}

// maxAnswer bounds an answer's body.
const maxAnswer = 64 << 20

// readBody reads an answer's body, at most maxAnswer bytes: into one
// buffer of its length when the answer gives it (the replica's do).
func readBody(resp *http.Response) ([]byte, error) {
	if n := resp.ContentLength; n > 0 && n <= maxAnswer {
		raw := make([]byte, n)
		_, err := io.ReadFull(resp.Body, raw)
		return raw, err
	}
	return io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
}
