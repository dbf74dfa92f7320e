// Small pieces every route file of the server shares.
#pragma once

#include "server/api.h"

#include <string>

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace tandem::server {

// Writes BODY as the JSON reply with STATUS (invalid UTF-8 replaced, never thrown on).
void send_json(httplib::Response& res, int status, const json& body);

// The key a client sent: the x-api-key header (Anthropic), else the token of
// "Authorization: Bearer" (OpenAI); "" when neither.
std::string request_api_key(const httplib::Request& req);

}  // namespace tandem::server
