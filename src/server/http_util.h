// Small pieces every route file of the server shares.
#pragma once

#include "server/api.h"

#include <functional>
#include <string>

namespace httplib {
struct Request;
struct Response;
class DataSink;
}  // namespace httplib

namespace tandem::server {

// Writes BODY as the JSON reply with STATUS (invalid UTF-8 replaced, never thrown on).
void send_json(httplib::Response& res, int status, const json& body);

// The key a client sent: the x-api-key header (Anthropic), else the token of
// "Authorization: Bearer" (OpenAI); "" when neither.
std::string request_api_key(const httplib::Request& req);

// Sets the content of an SSE response whose events come from RUN, called on
// the HTTP worker thread once the headers are out.
void stream_response(httplib::Response& res, std::function<void(httplib::DataSink&)> run);

// PREFIX and 24 random hex digits (request and response ids).
std::string random_id(const char* prefix);

}  // namespace tandem::server
