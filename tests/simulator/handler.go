package simulator

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

const (
	targetPrefix  = "Kinesis_20131202."
	jsonType      = "application/x-amz-json-1.1"
	throttleCode  = "ProvisionedThroughputExceededException"
	maxBodyBytes  = 16 << 20
	accountID     = "000000000000"
	internalError = "InternalFailure"
)

// ServeHTTP handles one Kinesis API request.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "SerializationException", "simulator: read request: "+err.Error())
		return
	}
	if len(body) > maxBodyBytes {
		writeError(w, http.StatusRequestEntityTooLarge, "SerializationException", "simulator: request body over 16 MiB")
		return
	}
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), targetPrefix)
	limited := op == "PutRecords" || op == "PutRecord" || op == "GetRecords" || op == "GetShardIterator"
	if limited && !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-amz-json") {
		writeError(w, http.StatusBadRequest, "SerializationException",
			fmt.Sprintf("simulator: %s must be sent as %s, got Content-Type %q", op, jsonType, r.Header.Get("Content-Type")))
		return
	}
	ctx := r.Context()
	switch op {
	case "PutRecords":
		s.putRecords(ctx, w, r, body)
	case "PutRecord":
		s.putRecord(ctx, w, r, body)
	case "GetRecords":
		s.getRecords(ctx, w, r, body)
	case "GetShardIterator":
		s.getShardIterator(ctx, w, r, body)
	default:
		s.pass(ctx, w, r, body)
	}
}

// pass forwards a request unchanged.
func (s *Simulator) pass(ctx context.Context, w http.ResponseWriter, r *http.Request, body []byte) {
	res, err := s.forward(ctx, r, body)
	if err != nil {
		writeError(w, http.StatusBadGateway, internalError, "simulator: upstream: "+err.Error())
		return
	}
	res.write(w)
}

// writeError answers with a Kinesis JSON error.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	b, _ := json.Marshal(map[string]string{"__type": code, "message": msg})
	writeJSON(w, status, b)
}

func writeJSON(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", jsonType)
	w.Header().Set("x-amzn-RequestId", requestID())
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func throttleMessage(stream, shard string) string {
	return fmt.Sprintf("Rate exceeded for shard %s in stream %s under account %s.", shard, stream, accountID)
}

func failureStatus(code string) int {
	if code == internalError {
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
}

// decodedLen is the length of the bytes a standard base64 string encodes.
func decodedLen(s string) int {
	n := len(s) / 4 * 3
	if strings.HasSuffix(s, "==") {
		n -= 2
	} else if strings.HasSuffix(s, "=") {
		n--
	}
	if r := len(s) % 4; r > 1 { // unpadded tail
		n += r - 1
	}
	return n
}

// putEntry is the part of a PutRecords entry or PutRecord request that routes
// and sizes it.
type putEntry struct {
	Data            string
	PartitionKey    string
	ExplicitHashKey string
}

func (e putEntry) size() int { return decodedLen(e.Data) + len(e.PartitionKey) }

// verdict is what happened to one entry before forwarding.
type verdict struct {
	shard string
	size  int
	code  string // "" when admitted
	msg   string
	// limited is true when the shard's write limits refused the entry.
	limited bool
}

// judge decides an entry's fate: an injected failure, a refusal by the
// shard's write limits, or admission (charging the limits). s.mu must be held.
func (s *Simulator) judge(stream, shard string, size int) verdict {
	v := verdict{shard: shard, size: size}
	sh := s.shard(stream, shard)
	if code := s.takeInjection(); code != "" {
		v.code, v.msg = code, "Injected failure by the simulator."
		if code == internalError {
			v.msg = "Internal service failure."
		} else if code == throttleCode {
			v.msg = throttleMessage(stream, shard)
		}
		sh.st.FailedRecords++
		return v
	}
	now := s.cfg.clock.Now()
	sh.writeRecords.refill(now)
	sh.writeBytes.refill(now)
	if !sh.writeRecords.has(1) || !sh.writeBytes.has(float64(size)) {
		v.code, v.msg, v.limited = throttleCode, throttleMessage(stream, shard), true
		sh.st.RefusedRecords++
		sh.st.RefusedBytes += int64(size)
		return v
	}
	sh.writeRecords.take(1)
	sh.writeBytes.take(float64(size))
	return v
}

type putRecordsRequest struct {
	StreamName string
	StreamARN  string
	Records    []json.RawMessage
}

type putRecordsResult struct {
	ShardId        string `json:",omitempty"`
	SequenceNumber string `json:",omitempty"`
	ErrorCode      string `json:",omitempty"`
	ErrorMessage   string `json:",omitempty"`
}

func (s *Simulator) putRecords(ctx context.Context, w http.ResponseWriter, r *http.Request, body []byte) {
	var req putRecordsRequest
	var whole map[string]json.RawMessage
	if json.Unmarshal(body, &req) != nil || json.Unmarshal(body, &whole) != nil || len(req.Records) == 0 {
		s.pass(ctx, w, r, body) // let the upstream name what is wrong
		return
	}
	stream := streamName(req.StreamName, req.StreamARN)
	entries := make([]putEntry, len(req.Records))
	for i, raw := range req.Records {
		if json.Unmarshal(raw, &entries[i]) != nil {
			s.pass(ctx, w, r, body)
			return
		}
	}
	m, err := s.shardMap(ctx, stream)
	if err != nil {
		s.pass(ctx, w, r, body) // e.g. an unknown stream: the upstream answers
		return
	}
	shards := make([]string, len(entries))
	for i, e := range entries {
		sh, err := m.ShardFor(e.PartitionKey, e.ExplicitHashKey)
		if err != nil {
			s.pass(ctx, w, r, body)
			return
		}
		shards[i] = sh.ID
	}

	verdicts := make([]verdict, len(entries))
	var admitted []json.RawMessage
	s.mu.Lock()
	called := map[string]bool{}
	for i, e := range entries {
		verdicts[i] = s.judge(stream, shards[i], e.size())
		if !called[shards[i]] {
			called[shards[i]] = true
			s.shard(stream, shards[i]).st.PutCalls++
		}
		if verdicts[i].code == "" {
			admitted = append(admitted, req.Records[i])
		}
	}
	s.mu.Unlock()

	var upstream []putRecordsResult
	if len(admitted) > 0 {
		recs, _ := json.Marshal(admitted)
		whole["Records"] = recs
		fwd, _ := json.Marshal(whole)
		res, err := s.forward(ctx, r, fwd)
		if err != nil {
			writeError(w, http.StatusBadGateway, internalError, "simulator: upstream: "+err.Error())
			return
		}
		if res.status != http.StatusOK {
			res.write(w)
			return
		}
		var out struct{ Records []putRecordsResult }
		if err := json.Unmarshal(res.body, &out); err != nil || len(out.Records) != len(admitted) {
			writeError(w, http.StatusBadGateway, internalError,
				fmt.Sprintf("simulator: upstream PutRecords answered %d results for %d entries (%v)", len(out.Records), len(admitted), err))
			return
		}
		upstream = out.Records
	}

	results := make([]putRecordsResult, len(entries))
	failed := 0
	stale := false
	s.mu.Lock()
	for i, v := range verdicts {
		sh := s.shard(stream, v.shard)
		if v.code != "" {
			results[i] = putRecordsResult{ErrorCode: v.code, ErrorMessage: v.msg}
			failed++
			continue
		}
		res := upstream[0]
		upstream = upstream[1:]
		results[i] = res
		if res.ErrorCode != "" {
			failed++
			sh.st.FailedRecords++
			continue
		}
		sh.st.AdmittedRecords++
		sh.st.AdmittedBytes += int64(v.size)
		if res.ShardId != v.shard {
			sh.st.Mispredicted++
			stale = true
		}
	}
	if stale {
		s.stream(stream).stale = true
	}
	s.mu.Unlock()
	b, _ := json.Marshal(struct {
		FailedRecordCount int
		Records           []putRecordsResult
	}{failed, results})
	writeJSON(w, http.StatusOK, b)
}

type putRecordRequest struct {
	StreamName string
	StreamARN  string
	putEntry
}

func (s *Simulator) putRecord(ctx context.Context, w http.ResponseWriter, r *http.Request, body []byte) {
	var req putRecordRequest
	if json.Unmarshal(body, &req) != nil {
		s.pass(ctx, w, r, body)
		return
	}
	stream := streamName(req.StreamName, req.StreamARN)
	m, err := s.shardMap(ctx, stream)
	if err != nil {
		s.pass(ctx, w, r, body)
		return
	}
	sh, err := m.ShardFor(req.PartitionKey, req.ExplicitHashKey)
	if err != nil {
		s.pass(ctx, w, r, body)
		return
	}
	size := req.size()
	s.mu.Lock()
	v := s.judge(stream, sh.ID, size)
	st := s.shard(stream, sh.ID)
	st.st.PutCalls++
	if v.limited {
		st.st.ThrottledPutCalls++
	}
	s.mu.Unlock()
	if v.code != "" {
		writeError(w, failureStatus(v.code), v.code, v.msg)
		return
	}
	res, err := s.forward(ctx, r, body)
	if err != nil {
		writeError(w, http.StatusBadGateway, internalError, "simulator: upstream: "+err.Error())
		return
	}
	if res.status == http.StatusOK {
		var out putRecordsResult
		_ = json.Unmarshal(res.body, &out)
		s.mu.Lock()
		st.st.AdmittedRecords++
		st.st.AdmittedBytes += int64(size)
		if out.ShardId != sh.ID {
			st.st.Mispredicted++
			s.stream(stream).stale = true
		}
		s.mu.Unlock()
	} else {
		s.mu.Lock()
		st.st.FailedRecords++
		s.mu.Unlock()
	}
	res.write(w)
}

func (s *Simulator) getShardIterator(ctx context.Context, w http.ResponseWriter, r *http.Request, body []byte) {
	var req struct{ StreamName, StreamARN, ShardId string }
	_ = json.Unmarshal(body, &req)
	res, err := s.forward(ctx, r, body)
	if err != nil {
		writeError(w, http.StatusBadGateway, internalError, "simulator: upstream: "+err.Error())
		return
	}
	if res.status == http.StatusOK {
		var out struct{ ShardIterator string }
		if json.Unmarshal(res.body, &out) == nil {
			s.mu.Lock()
			s.rememberIterator(out.ShardIterator, shardRef{streamName(req.StreamName, req.StreamARN), req.ShardId})
			s.mu.Unlock()
		}
	}
	res.write(w)
}

func (s *Simulator) getRecords(ctx context.Context, w http.ResponseWriter, r *http.Request, body []byte) {
	var req struct{ ShardIterator string }
	_ = json.Unmarshal(body, &req)
	s.mu.Lock()
	ref, ok := s.iteratorShard(req.ShardIterator)
	if !ok {
		s.unknownIterators++
		s.mu.Unlock()
		s.pass(ctx, w, r, body)
		return
	}
	sh := s.shard(ref.stream, ref.shard)
	now := s.cfg.clock.Now()
	sh.readCalls.refill(now)
	sh.readBytes.refill(now)
	if !sh.readCalls.has(1) || sh.readBytes.inDebt() {
		sh.st.ThrottledReads++
		s.mu.Unlock()
		writeError(w, http.StatusBadRequest, throttleCode, throttleMessage(ref.stream, ref.shard))
		return
	}
	sh.readCalls.take(1)
	s.mu.Unlock()

	res, err := s.forward(ctx, r, body)
	if err != nil {
		writeError(w, http.StatusBadGateway, internalError, "simulator: upstream: "+err.Error())
		return
	}
	if res.status == http.StatusOK {
		var out struct {
			Records []struct {
				Data         string
				PartitionKey string
			}
			NextShardIterator string
		}
		if json.Unmarshal(res.body, &out) == nil {
			n := 0
			for _, rec := range out.Records {
				n += decodedLen(rec.Data) + len(rec.PartitionKey)
			}
			s.mu.Lock()
			sh.readBytes.refill(s.cfg.clock.Now())
			sh.readBytes.take(float64(n))
			sh.st.ReadCalls++
			sh.st.ReadRecords += int64(len(out.Records))
			sh.st.ReadBytes += int64(n)
			s.rememberIterator(out.NextShardIterator, ref)
			s.mu.Unlock()
		}
	}
	res.write(w)
}
