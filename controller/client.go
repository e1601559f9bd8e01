package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Client talks to the controller's HTTP API. It knows several replicas
// (Endpoints) and moves to the next when one does not answer; it retries
// while the cluster has no leader (503) until Retry has passed. It is safe
// for concurrent use.
type Client struct {
	// Endpoints are replicas' API addresses: "host:port" or URLs.
	Endpoints []string
	// Token is sent as a bearer token (admin for operators, join for
	// agents).
	Token string
	// HTTP is the client to use (default: one with a 10 s timeout).
	HTTP *http.Client
	// Retry bounds how long a call keeps retrying through elections and
	// unreachable replicas (default 5 s; negative: no retry).
	Retry time.Duration

	next atomic.Uint32 // the endpoint that answered last
}

// APIError is an error answer of the API.
type APIError struct {
	Status int
	ErrorBody
}

// Error names the status and the server's message.
func (e *APIError) Error() string {
	if len(e.Details) > 1 {
		// Enough to act on; the JSON answer has them all.
		const show = 10
		det := e.Details
		more := ""
		if len(det) > show {
			det, more = det[:show], fmt.Sprintf("\n  ... and %d more", len(e.Details)-show)
		}
		return fmt.Sprintf("controller: %d %s: %s\n  %s%s", e.Status, e.Code, e.ErrorBody.Error, strings.Join(det, "\n  "), more)
	}
	return fmt.Sprintf("controller: %d %s: %s", e.Status, e.Code, e.ErrorBody.Error)
}

func baseURL(ep string) string {
	if strings.HasPrefix(ep, "http://") || strings.HasPrefix(ep, "https://") {
		return strings.TrimRight(ep, "/")
	}
	return "http://" + ep
}

// do sends one call and decodes a 2xx answer into out.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	if len(c.Endpoints) == 0 {
		return errors.New("controller: client has no endpoints (--controller)")
	}
	var body []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = b
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	retry := c.Retry
	if retry == 0 {
		retry = 5 * time.Second
	}
	deadline := time.Now().Add(retry)
	backoff := 50 * time.Millisecond
	var last error
	for attempt := 0; ; attempt++ {
		i := int(c.next.Load()) % len(c.Endpoints)
		leader, err := c.once(ctx, hc, baseURL(c.Endpoints[i])+path, method, body, out)
		if err == nil {
			// Talk to the leader directly next time: followers forward
			// writes, at the cost of a hop.
			c.prefer(leader)
			return nil
		}
		last = err
		var ae *APIError
		switch {
		case errors.As(err, &ae) && ae.Status == http.StatusServiceUnavailable:
			// No leader, or it changed: if the answer names the leader
			// and we know it, go there; otherwise wait and retry.
			c.prefer(ae.Leader)
		case errors.As(err, &ae):
			return err // a real answer: not ours to retry
		case ctx.Err() != nil:
			return err
		default:
			// Unreachable: try the next replica.
			c.next.CompareAndSwap(uint32(i), uint32(i+1))
		}
		if retry < 0 || time.Now().Add(backoff).After(deadline) {
			return last
		}
		select {
		case <-ctx.Done():
			return last
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 500*time.Millisecond)
	}
}

// prefer makes the endpoint that is the leader's API address (if listed)
// the next one tried.
func (c *Client) prefer(leader string) {
	if leader == "" {
		return
	}
	for k, ep := range c.Endpoints {
		if strings.TrimPrefix(strings.TrimPrefix(ep, "http://"), "https://") == leader {
			c.next.Store(uint32(k))
			return
		}
	}
}

// once sends one request; it returns the leader the answer named.
func (c *Client) once(ctx context.Context, hc *http.Client, u, method string, body []byte, out any) (string, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return "", err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	leader := resp.Header.Get(HeaderLeader)
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return leader, err
	}
	if resp.StatusCode/100 != 2 {
		ae := &APIError{Status: resp.StatusCode}
		if json.Unmarshal(b, &ae.ErrorBody) != nil || ae.ErrorBody.Error == "" {
			ae.ErrorBody = ErrorBody{Error: strings.TrimSpace(string(b)), Code: http.StatusText(resp.StatusCode)}
		}
		if ae.Leader == "" {
			ae.Leader = leader
		}
		return leader, ae
	}
	if out == nil {
		return leader, nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return leader, fmt.Errorf("controller: %s %s: decoding the answer: %w", method, u, err)
	}
	return leader, nil
}

// Deploy deploys an application (POST /v1/apps).
func (c *Client) Deploy(ctx context.Context, req DeployRequest) (*PlanResponse, error) {
	var out PlanResponse
	if err := c.do(ctx, http.MethodPost, "/v1/apps", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Plan places an application without deploying it (POST /v1/plan).
func (c *Client) Plan(ctx context.Context, req DeployRequest) (*PlanResponse, error) {
	var out PlanResponse
	if err := c.do(ctx, http.MethodPost, "/v1/plan", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Undeploy removes an application (DELETE /v1/apps/{name}).
func (c *Client) Undeploy(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/apps/"+url.PathEscape(name), nil, nil)
}

// Apps lists the deployed applications.
func (c *Client) Apps(ctx context.Context) ([]AppSummary, error) {
	var out []AppSummary
	return out, c.do(ctx, http.MethodGet, "/v1/apps", nil, &out)
}

// Nodes lists the registered nodes with the leader's view of liveness.
func (c *Client) Nodes(ctx context.Context) ([]NodeStatus, error) {
	var out []NodeStatus
	return out, c.do(ctx, http.MethodGet, "/v1/nodes", nil, &out)
}

// Placements lists where every instance runs ("" app: all).
func (c *Client) Placements(ctx context.Context, app string, explain bool) ([]PlacedInstance, error) {
	q := url.Values{}
	if app != "" {
		q.Set("app", app)
	}
	if explain {
		q.Set("explain", "1")
	}
	var out []PlacedInstance
	return out, c.do(ctx, http.MethodGet, "/v1/placements?"+q.Encode(), nil, &out)
}

// Events returns events from sequence number since on.
func (c *Client) Events(ctx context.Context, since uint64, limit int) (*EventsResponse, error) {
	var out EventsResponse
	path := "/v1/events?since=" + strconv.FormatUint(since, 10)
	if limit > 0 {
		path += "&limit=" + strconv.Itoa(limit)
	}
	return &out, c.do(ctx, http.MethodGet, path, nil, &out)
}

// Cluster returns the answering replica's view of the controller cluster.
func (c *Client) Cluster(ctx context.Context) (*ClusterStatus, error) {
	var out ClusterStatus
	return &out, c.do(ctx, http.MethodGet, "/v1/cluster", nil, &out)
}

// Join asks the cluster to add a replica as a voter.
func (c *Client) Join(ctx context.Context, req JoinRequest) error {
	return c.do(ctx, http.MethodPost, "/v1/cluster/join", req, nil)
}

// Register registers an agent (join token).
func (c *Client) Register(ctx context.Context, req RegisterRequest) (*RegisterResponse, error) {
	var out RegisterResponse
	if err := c.do(ctx, http.MethodPost, "/v1/agents/register", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Heartbeat sends an agent's heartbeat (join token).
func (c *Client) Heartbeat(ctx context.Context, hb *HeartbeatRequest) (*HeartbeatResponse, error) {
	var out HeartbeatResponse
	if err := c.do(ctx, http.MethodPost, "/v1/agents/heartbeat", hb, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ReportMigration reports the outcome of migration id (join token).
func (c *Client) ReportMigration(ctx context.Context, id uint64, rep MigrationReport) error {
	return c.do(ctx, http.MethodPost, "/v1/agents/migrations/"+strconv.FormatUint(id, 10), rep, nil)
}

// Routes fetches the routing table; with wait > 0 it waits (server side,
// up to timeout) for an epoch above after.
func (c *Client) Routes(ctx context.Context, after uint64, wait time.Duration) (*Routes, error) {
	path := "/v1/routes"
	if wait > 0 {
		path += fmt.Sprintf("?wait=%d&timeout=%s", after, wait)
	}
	var out Routes
	return &out, c.do(ctx, http.MethodGet, path, nil, &out)
}
