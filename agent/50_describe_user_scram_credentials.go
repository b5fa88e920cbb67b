package agent

// DescribeUserScramCredentials (v0) and AlterUserScramCredentials (51_...).
//
// SCRAM credentials live in etcd as salt, iteration count, stored key and
// server key (metadata.ScramCredential): never a password. Describing
// lists users with their mechanisms and iteration counts and needs
// DESCRIBE on the cluster; altering needs ALTER on it. Clients send salted
// passwords (kadm and Kafka's tools salt them locally), so a password
// never reaches the agent through these APIs.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
)

func init() {
	register(apiSpec{key: 50, min: 0, max: 0, serve: handleSync((*Agent).handleDescribeUserSCRAM)})
}

// Kafka's codes for SCRAM mechanisms in these APIs.
var scramMechanismCodes = map[int8]string{1: metadata.ScramSHA256, 2: metadata.ScramSHA512}

func scramMechanismCode(name string) int8 {
	for code, n := range scramMechanismCodes {
		if n == name {
			return code
		}
	}
	return 0
}

func (a *Agent) handleDescribeUserSCRAM(ctx context.Context, rq *request, req *kmsg.DescribeUserSCRAMCredentialsRequest) (*kmsg.DescribeUserSCRAMCredentialsResponse, error) {
	resp := req.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
	if !a.authorizedCluster(rq.conn, metadata.ACLOpDescribe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		resp.ErrorMessage = errMessage("describing users needs DESCRIBE on the cluster")
		return resp, nil
	}
	result := func(name string, creds map[string]metadata.ScramCredential) kmsg.DescribeUserSCRAMCredentialsResponseResult {
		r := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		r.User = name
		for _, mech := range []string{metadata.ScramSHA256, metadata.ScramSHA512} {
			if c, ok := creds[mech]; ok {
				ci := kmsg.NewDescribeUserSCRAMCredentialsResponseResultCredentialInfo()
				ci.Mechanism = scramMechanismCode(mech)
				ci.Iterations = int32(c.Iterations)
				r.CredentialInfos = append(r.CredentialInfos, ci)
			}
		}
		return r
	}
	if req.Users == nil {
		users, err := a.store.ListUsers(ctx)
		if err != nil {
			ke, msg := kafkaError(err)
			resp.ErrorCode = ke.Code
			resp.ErrorMessage = errMessage(msg)
			return resp, nil
		}
		for _, name := range metadata.UserNames(users) {
			resp.Results = append(resp.Results, result(name, users[name]))
		}
		return resp, nil
	}
	for _, u := range req.Users {
		creds, err := a.store.UserCredentials(ctx, u.Name)
		if err != nil {
			r := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
			r.User = u.Name
			if errors.Is(err, metadata.ErrUnknownUser) {
				r.ErrorCode = kerr.ResourceNotFound.Code
				r.ErrorMessage = errMessage("no SCRAM credentials for user " + u.Name)
			} else {
				ke, msg := kafkaError(err)
				r.ErrorCode = ke.Code
				r.ErrorMessage = errMessage(msg)
			}
			resp.Results = append(resp.Results, r)
			continue
		}
		resp.Results = append(resp.Results, result(u.Name, creds))
	}
	return resp, nil
}
