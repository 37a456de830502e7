// tests/audit/go/checkpoint_check.go - an independent check of sluice's
// provable log (docs/audit-tlog.md) with Go's golang.org/x/mod/sumdb/note
// and golang.org/x/mod/sumdb/tlog, sharing no code with sluice.
//
// Leaf hashes are recomputed here from the canonical encodings that
// `sluice audit export` prints (tlog.RecordHash(line) = SHA-256(0x00 || line));
// tree roots are recomputed with tlog.StoredHashes and tlog.TreeHash; every
// checkpoint must open with note.Open under the verifier keys given, carry
// an origin derived from entry 1's leaf hash, and sign the recomputed root;
// proofs are checked against the signed roots with tlog.CheckRecord and
// tlog.CheckTree.
//
// usage: checkpoint_check -verifiers FILE -export FILE -checkpoint FILE...
//            [-inclusion PROOF.json]... [-consistency PROOF.json]...
// Prints one "ok" line per check; exits 1 at the first failure.
package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "checkpoint_check: "+format+"\n", args...)
	os.Exit(1)
}

type memHashes []tlog.Hash

func (m memHashes) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		if x < 0 || x >= int64(len(m)) {
			return nil, fmt.Errorf("no stored hash %d", x)
		}
		out[i] = m[x]
	}
	return out, nil
}

func readLines(path string) [][]byte {
	data, err := os.ReadFile(path)
	if err != nil {
		fail("%v", err)
	}
	var lines [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		lines = append(lines, append([]byte(nil), sc.Bytes()...))
	}
	if err := sc.Err(); err != nil {
		fail("%s: %v", path, err)
	}
	return lines
}

func decodeHash(s, what string) tlog.Hash {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != tlog.HashSize {
		fail("%s: %q is not a base64 SHA-256", what, s)
	}
	var h tlog.Hash
	copy(h[:], b)
	return h
}

type proof struct {
	Index  *int64   `json:"index"`
	Size   int64    `json:"size"`
	From   int64    `json:"from"`
	To     int64    `json:"to"`
	Hashes []string `json:"hashes"`
}

func readProof(path string) proof {
	data, err := os.ReadFile(path)
	if err != nil {
		fail("%v", err)
	}
	var p proof
	if err := json.Unmarshal(data, &p); err != nil {
		fail("%s: %v", path, err)
	}
	return p
}

func main() {
	var verifiersFile, exportFile string
	var checkpoints, inclusions, consistencies list
	flag.StringVar(&verifiersFile, "verifiers", "", "note verifier keys, one per line")
	flag.StringVar(&exportFile, "export", "", "output of sluice audit export")
	flag.Var(&checkpoints, "checkpoint", "a checkpoint note (repeatable)")
	flag.Var(&inclusions, "inclusion", "sluice audit prove --entry --json output (repeatable)")
	flag.Var(&consistencies, "consistency", "sluice audit prove --from --json output (repeatable)")
	flag.Parse()
	if verifiersFile == "" || exportFile == "" || len(checkpoints) == 0 {
		fail("give -verifiers, -export and at least one -checkpoint")
	}

	var vs []note.Verifier
	for _, l := range readLines(verifiersFile) {
		if len(l) == 0 {
			continue
		}
		v, err := note.NewVerifier(string(l))
		if err != nil {
			fail("verifier %q: %v", l, err)
		}
		vs = append(vs, v)
	}
	known := note.VerifierList(vs...)

	// The leaves, recomputed here, and the tree's stored hashes.
	records := readLines(exportFile)
	if len(records) == 0 {
		fail("%s: no entries", exportFile)
	}
	leaves := make([]tlog.Hash, len(records))
	var stored memHashes
	for i, r := range records {
		leaves[i] = tlog.RecordHash(r)
		hs, err := tlog.StoredHashes(int64(i), r, stored)
		if err != nil {
			fail("stored hashes of record %d: %v", i, err)
		}
		stored = append(stored, hs...)
	}
	first := hex.EncodeToString(leaves[0][:])
	wantOrigin := "sluice.journal/" + first[:32]

	// Every checkpoint: signature, origin, size and root recomputed.
	roots := map[int64]tlog.Hash{}
	for _, path := range checkpoints {
		data, err := os.ReadFile(path)
		if err != nil {
			fail("%v", err)
		}
		n, err := note.Open(data, known)
		if err != nil {
			fail("%s: note.Open: %v", path, err)
		}
		// x/mod's tlog.ParseTree expects Go's own origin line: parse the C2SP body by hand.
		lines := strings.Split(n.Text, "\n")
		if len(lines) != 4 || lines[3] != "" {
			fail("%s: the body is not origin, size and root lines", path)
		}
		if lines[0] != wantOrigin {
			fail("%s: origin %q, but entry 1's leaf gives %q", path, lines[0], wantOrigin)
		}
		size, err := strconv.ParseInt(lines[1], 10, 64)
		if err != nil || size < 1 || strconv.FormatInt(size, 10) != lines[1] {
			fail("%s: bad tree size %q", path, lines[1])
		}
		root := decodeHash(lines[2], path)
		if size > int64(len(records)) {
			fail("%s: tree size %d but only %d entries exported", path, size, len(records))
		}
		th, err := tlog.TreeHash(size, stored)
		if err != nil {
			fail("%s: TreeHash: %v", path, err)
		}
		if th != root {
			fail("%s: signed root %s but the exported entries give %s", path, root, th)
		}
		roots[size] = root
		fmt.Printf("ok checkpoint size %d root %s signed by %s\n", size, root, n.Sigs[0].Name)
	}

	for _, path := range inclusions {
		p := readProof(path)
		if p.Index == nil {
			fail("%s: not an inclusion proof", path)
		}
		root, ok := roots[p.Size]
		if !ok {
			fail("%s: no verified checkpoint of size %d", path, p.Size)
		}
		if *p.Index < 0 || *p.Index >= int64(len(leaves)) {
			fail("%s: index %d out of range", path, *p.Index)
		}
		var rp tlog.RecordProof
		for _, h := range p.Hashes {
			rp = append(rp, decodeHash(h, path))
		}
		if err := tlog.CheckRecord(rp, p.Size, root, *p.Index, leaves[*p.Index]); err != nil {
			fail("%s: CheckRecord: %v", path, err)
		}
		fmt.Printf("ok inclusion of entry %d in size %d\n", *p.Index+1, p.Size)
	}

	for _, path := range consistencies {
		p := readProof(path)
		oldRoot, ok1 := roots[p.From]
		newRoot, ok2 := roots[p.To]
		if !ok1 || !ok2 {
			fail("%s: need verified checkpoints of sizes %d and %d", path, p.From, p.To)
		}
		var tp tlog.TreeProof
		for _, h := range p.Hashes {
			tp = append(tp, decodeHash(h, path))
		}
		if err := tlog.CheckTree(tp, p.To, newRoot, p.From, oldRoot); err != nil {
			fail("%s: CheckTree: %v", path, err)
		}
		fmt.Printf("ok consistency from size %d to %d\n", p.From, p.To)
	}
}
