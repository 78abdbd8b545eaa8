import Contracts

/// `GET /openapi.json`: the QueryAPI's contract as implemented (OpenAPI 3.0.3). Keep it in step
/// with the routes: `OpenAPITests` checks that every route of `QueryAPI.addRoutes` is described,
/// and `scripts/openapi-test` (schemathesis) checks the running server's answers against it.
enum OpenAPI {
    /// Parsed once; a unit test proves the text is valid JSON.
    static let json: JSONValue = (try? JSONValue.parse(Array(document.utf8))) ?? .null

    static let document = ##"""
{
  "openapi": "3.0.3",
  "info": {
    "title": "Tributary QueryAPI",
    "version": "1",
    "description": "Reports over the conversions and revenue rollups, goals and funnels, and site administration. Money is always a list of {currency, amount, amount_minor}, one entry per currency. Errors are {\"error\": {\"code\", \"message\", \"field\"?, \"index\"?}}."
  },
  "tags": [
    {
      "name": "admin",
      "description": "Sites and keys; the admin token (TRIBUTARY_ADMIN_TOKEN)."
    },
    {
      "name": "reports",
      "description": "A site's read key or the admin token."
    },
    {
      "name": "goals",
      "description": "Listing and reports: a read key or the admin token; creating and deleting: the admin token."
    },
    {
      "name": "funnels",
      "description": "Listing and reports: a read key or the admin token; creating and deleting: the admin token."
    },
    {
      "name": "meta"
    },
    {
      "name": "operations"
    }
  ],
  "paths": {
    "/v1/admin/sites": {
      "post": {
        "operationId": "createSite",
        "tags": [
          "admin"
        ],
        "summary": "Create a site and its keys",
        "description": "Creates a site with a fresh server key and read key, shown only in this answer (stored hashed).",
        "security": [
          {
            "adminToken": []
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/SiteCreate"
              }
            }
          }
        },
        "responses": {
          "201": {
            "description": "Created; the keys are shown once.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/SiteKeys"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "403": {
            "$ref": "#/components/responses/Forbidden"
          },
          "409": {
            "$ref": "#/components/responses/Conflict"
          },
          "413": {
            "$ref": "#/components/responses/TooLarge"
          }
        }
      },
      "get": {
        "operationId": "listSites",
        "tags": [
          "admin"
        ],
        "summary": "List sites",
        "security": [
          {
            "adminToken": []
          }
        ],
        "responses": {
          "200": {
            "description": "Every site.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/SiteList"
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "403": {
            "$ref": "#/components/responses/Forbidden"
          }
        }
      }
    },
    "/v1/admin/sites/{site}/keys": {
      "post": {
        "operationId": "rotateKeys",
        "tags": [
          "admin"
        ],
        "summary": "Rotate a site's keys",
        "description": "Revokes the site's current keys and returns new ones.",
        "security": [
          {
            "adminToken": []
          }
        ],
        "parameters": [
          {
            "$ref": "#/components/parameters/site"
          }
        ],
        "responses": {
          "201": {
            "description": "The new keys, shown once.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/SiteKeys"
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "403": {
            "$ref": "#/components/responses/Forbidden"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          }
        }
      }
    },
    "/v1/sites/{site}/overview": {
      "get": {
        "operationId": "overview",
        "tags": [
          "reports"
        ],
        "summary": "Traffic, orders and money of a date range",
        "description": "Visitors (distinct persons with a session), sessions, pageviews, conversions (orders), revenue, refunds, net revenue and AOV per currency, conversion rate.",
        "security": [
          {
            "readKey": []
          },
          {
            "adminToken": []
          }
        ],
        "parameters": [
          {
            "$ref": "#/components/parameters/site"
          },
          {
            "$ref": "#/components/parameters/from"
          },
          {
            "$ref": "#/components/parameters/to"
          },
          {
            "$ref": "#/components/parameters/filter_source"
          },
          {
            "$ref": "#/components/parameters/filter_medium"
          },
          {
            "$ref": "#/components/parameters/filter_campaign"
          },
          {
            "$ref": "#/components/parameters/filter_channel"
          },
          {
            "$ref": "#/components/parameters/filter_landing_page"
          },
          {
            "$ref": "#/components/parameters/filter_referrer_domain"
          }
        ],
        "responses": {
          "200": {
            "description": "Traffic, orders and money of a date range",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/OverviewReport"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "403": {
            "$ref": "#/components/responses/Forbidden"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          }
        }
      }
    },
    "/v1/sites/{site}/revenue": {
      "get": {
        "operationId": "revenue",
        "tags": [
          "reports"
        ],
        "summary": "Orders and money per breakdown row",
        "description": "Rows of the breakdown's values with orders, first orders, revenue, refunds, net revenue and AOV per currency; totals over all rows.",
        "security": [
          {
            "readKey": []
          },
          {
            "adminToken": []
          }
        ],
        "parameters": [
          {
            "$ref": "#/components/parameters/site"
          },
          {
            "$ref": "#/components/parameters/from"
          },
          {
            "$ref": "#/components/parameters/to"
          },
          {
            "$ref": "#/components/parameters/breakdown"
          },
          {
            "$ref": "#/components/parameters/filter_source"
          },
          {
            "$ref": "#/components/parameters/filter_medium"
          },
          {
            "$ref": "#/components/parameters/filter_campaign"
          },
          {
            "$ref": "#/components/parameters/filter_channel"
          },
          {
            "$ref": "#/components/parameters/filter_landing_page"
          },
          {
            "$ref": "#/components/parameters/filter_referrer_domain"
          },
          {
            "$ref": "#/components/parameters/filter_day"
          },
          {
            "$ref": "#/components/parameters/filter_week"
          },
          {
            "$ref": "#/components/parameters/filter_month"
          }
        ],
        "responses": {
          "200": {
            "description": "Orders and money per breakdown row",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/RevenueReport"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "403": {
            "$ref": "#/components/responses/Forbidden"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          }
        }
      }
    },
    "/v1/sites/{site}/products": {
      "get": {
        "operationId": "products",
        "tags": [
          "reports"
        ],
        "summary": "Quantity, orders and revenue per product",
        "description": "From the line items of the orders in the range.",
        "security": [
          {
            "readKey": []
          },
          {
            "adminToken": []
          }
        ],
        "parameters": [
          {
            "$ref": "#/components/parameters/site"
          },
          {
            "$ref": "#/components/parameters/from"
          },
          {
            "$ref": "#/components/parameters/to"
          },
          {
            "name": "breakdown",
            "in": "query",
            "schema": {
              "type": "string",
              "enum": [
                "product_id",
                "sku",
                "category",
                "brand",
                "name",
                "variant"
              ],
              "default": "product_id"
            },
            "description": "The line-item field to group by."
          }
        ],
        "responses": {
          "200": {
            "description": "Quantity, orders and revenue per product",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ProductsReport"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "403": {
            "$ref": "#/components/responses/Forbidden"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          }
        }
      }
    },
    "/v1/sites/{site}/attribution": {
      "get": {
        "operationId": "attribution",
        "tags": [
          "reports"
        ],
        "summary": "Conversions credited to sources",
        "description": "Each conversion in the range credits its person's sessions within the lookback by the model; the credits of one conversion sum to 1 and its money is split exactly.",
        "security": [
          {
            "readKey": []
          },
          {
            "adminToken": []
          }
        ],
        "parameters": [
          {
            "$ref": "#/components/parameters/site"
          },
          {
            "$ref": "#/components/parameters/from"
          },
          {
            "$ref": "#/components/parameters/to"
          },
          {
            "name": "conversion",
            "in": "query",
            "schema": {
              "type": "string",
              "minLength": 1,
              "default": "purchase"
            },
            "description": "An action (orders for purchase) or an event name."
          },
          {
            "name": "model",
            "in": "query",
            "schema": {
              "type": "string",
              "enum": [
                "last_touch",
                "last_non_direct",
                "first_touch",
                "linear",
                "position_based",
                "time_decay"
              ],
              "default": "last_touch"
            }
          },
          {
            "name": "lookback_days",
            "in": "query",
            "schema": {
              "type": "integer",
              "minimum": 1,
              "maximum": 365,
              "default": 30
            }
          }
        ],
        "responses": {
          "200": {
            "description": "Conversions credited to sources",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/AttributionReport"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "403": {
            "$ref": "#/components/responses/Forbidden"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          }
        }
      }
    },
    "/v1/sites/{site}/retention": {
      "get": {
        "operationId": "retention",
        "tags": [
          "reports"
        ],
        "summary": "Repeat behaviour of cohorts",
        "description": "Persons grouped by the period of their first matching event (cohorts starting in the range), and the share of each cohort doing it again in each later period.",
        "security": [
          {
            "readKey": []
          },
          {
            "adminToken": []
          }
        ],
        "parameters": [
          {
            "$ref": "#/components/parameters/site"
          },
          {
            "$ref": "#/components/parameters/from"
          },
          {
            "$ref": "#/components/parameters/to"
          },
          {
            "name": "event",
            "in": "query",
            "schema": {
              "type": "string",
              "minLength": 1,
              "default": "purchase"
            },
            "description": "An action or an event name."
          },
          {
            "name": "period",
            "in": "query",
            "schema": {
              "type": "string",
              "enum": [
                "day",
                "week",
                "month"
              ],
              "default": "week"
            }
          }
        ],
        "responses": {
          "200": {
            "description": "Repeat behaviour of cohorts",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/RetentionReport"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "403": {
            "$ref": "#/components/responses/Forbidden"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          }
        }
      }
    },
    "/v1/sites/{site}/goals": {
      "post": {
        "operationId": "createGoal",
        "tags": [
          "goals"
        ],
        "summary": "Create a goal",
        "description": "Goals apply retroactively.",
        "security": [
          {
            "adminToken": []
          }
        ],
        "parameters": [
          {
            "$ref": "#/components/parameters/site"
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/GoalCreate"
              },
              "example": {
                "name": "Purchases",
                "match": {
                  "action": "purchase"
                },
                "revenue": true
              }
            }
          }
        },
        "responses": {
          "201": {
            "description": "Created.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Goal"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "403": {
            "$ref": "#/components/responses/Forbidden"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "413": {
            "$ref": "#/components/responses/TooLarge"
          }
        }
      },
      "get": {
        "operationId": "listGoals",
        "tags": [
          "goals"
        ],
        "summary": "List a site's goals",
        "security": [
          {
            "readKey": []
          },
          {
            "adminToken": []
          }
        ],
        "parameters": [
          {
            "$ref": "#/components/parameters/site"
          }
        ],
        "responses": {
          "200": {
            "description": "The site's goals, oldest first.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/GoalList"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "403": {
            "$ref": "#/components/responses/Forbidden"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          }
        }
      }
    },
    "/v1/sites/{site}/goals/{id}": {
      "delete": {
        "operationId": "deleteGoal",
        "tags": [
          "goals"
        ],
        "summary": "Delete a goal",
        "security": [
          {
            "adminToken": []
          }
        ],
        "parameters": [
          {
            "$ref": "#/components/parameters/site"
          },
          {
            "$ref": "#/components/parameters/goalId"
          }
        ],
        "responses": {
          "204": {
            "description": "Deleted."
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "403": {
            "$ref": "#/components/responses/Forbidden"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          }
        }
      }
    },
    "/v1/sites/{site}/goals/{id}/report": {
      "get": {
        "operationId": "goalReport",
        "tags": [
          "goals"
        ],
        "summary": "A goal's visitors, converters, conversions and revenue",
        "description": "Computed from the events at query time. A conversion is one matching event, counted once however many copies arrived.",
        "security": [
          {
            "readKey": []
          },
          {
            "adminToken": []
          }
        ],
        "parameters": [
          {
            "$ref": "#/components/parameters/site"
          },
          {
            "$ref": "#/components/parameters/goalId"
          },
          {
            "$ref": "#/components/parameters/from"
          },
          {
            "$ref": "#/components/parameters/to"
          },
          {
            "name": "breakdown",
            "in": "query",
            "schema": {
              "type": "string",
              "pattern": "^(source|medium|campaign|channel|landing_page|referrer_domain|day|week|month)(,(source|medium|campaign|channel|landing_page|referrer_domain|day|week|month))*$"
            },
            "description": "Comma-separated dimensions; rows are broken down by the source dimensions and day (week and month are accepted and ignored)."
          },
          {
            "$ref": "#/components/parameters/filter_source"
          },
          {
            "$ref": "#/components/parameters/filter_medium"
          },
          {
            "$ref": "#/components/parameters/filter_campaign"
          },
          {
            "$ref": "#/components/parameters/filter_channel"
          },
          {
            "$ref": "#/components/parameters/filter_landing_page"
          },
          {
            "$ref": "#/components/parameters/filter_referrer_domain"
          }
        ],
        "responses": {
          "200": {
            "description": "A goal's visitors, converters, conversions and revenue",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/GoalReport"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "403": {
            "$ref": "#/components/responses/Forbidden"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          }
        }
      }
    },
    "/v1/sites/{site}/funnels": {
      "post": {
        "operationId": "createFunnel",
        "tags": [
          "funnels"
        ],
        "summary": "Create a funnel",
        "security": [
          {
            "adminToken": []
          }
        ],
        "parameters": [
          {
            "$ref": "#/components/parameters/site"
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/FunnelCreate"
              },
              "example": {
                "name": "Checkout",
                "steps": [
                  {
                    "action": "view_item"
                  },
                  {
                    "action": "add_to_cart"
                  },
                  {
                    "action": "begin_checkout"
                  },
                  {
                    "action": "purchase"
                  }
                ],
                "window": "7d",
                "order": "sequential"
              }
            }
          }
        },
        "responses": {
          "201": {
            "description": "Created.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Funnel"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "403": {
            "$ref": "#/components/responses/Forbidden"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "413": {
            "$ref": "#/components/responses/TooLarge"
          }
        }
      },
      "get": {
        "operationId": "listFunnels",
        "tags": [
          "funnels"
        ],
        "summary": "List a site's funnels",
        "security": [
          {
            "readKey": []
          },
          {
            "adminToken": []
          }
        ],
        "parameters": [
          {
            "$ref": "#/components/parameters/site"
          }
        ],
        "responses": {
          "200": {
            "description": "The site's funnels, oldest first.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/FunnelList"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "403": {
            "$ref": "#/components/responses/Forbidden"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          }
        }
      }
    },
    "/v1/sites/{site}/funnels/templates/ecommerce": {
      "post": {
        "operationId": "createEcommerceFunnel",
        "tags": [
          "funnels"
        ],
        "summary": "Create the standard e-commerce funnel",
        "description": "view_item → add_to_cart → begin_checkout → purchase, sequential, within 7 days.",
        "security": [
          {
            "adminToken": []
          }
        ],
        "parameters": [
          {
            "$ref": "#/components/parameters/site"
          }
        ],
        "responses": {
          "201": {
            "description": "Created.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Funnel"
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "403": {
            "$ref": "#/components/responses/Forbidden"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          }
        }
      }
    },
    "/v1/sites/{site}/funnels/{id}": {
      "delete": {
        "operationId": "deleteFunnel",
        "tags": [
          "funnels"
        ],
        "summary": "Delete a funnel",
        "security": [
          {
            "adminToken": []
          }
        ],
        "parameters": [
          {
            "$ref": "#/components/parameters/site"
          },
          {
            "$ref": "#/components/parameters/funnelId"
          }
        ],
        "responses": {
          "204": {
            "description": "Deleted."
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "403": {
            "$ref": "#/components/responses/Forbidden"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          }
        }
      }
    },
    "/v1/sites/{site}/funnels/{id}/report": {
      "get": {
        "operationId": "funnelReport",
        "tags": [
          "funnels"
        ],
        "summary": "Persons reaching each step of a funnel",
        "description": "Counted per person from the events: a person enters on a day in the range; later steps may fall up to the window after it.",
        "security": [
          {
            "readKey": []
          },
          {
            "adminToken": []
          }
        ],
        "parameters": [
          {
            "$ref": "#/components/parameters/site"
          },
          {
            "$ref": "#/components/parameters/funnelId"
          },
          {
            "$ref": "#/components/parameters/from"
          },
          {
            "$ref": "#/components/parameters/to"
          },
          {
            "name": "breakdown",
            "in": "query",
            "schema": {
              "type": "string",
              "pattern": "^(source|medium|campaign|channel|landing_page|referrer_domain|day|week|month)(,(source|medium|campaign|channel|landing_page|referrer_domain|day|week|month))*$"
            },
            "description": "Comma-separated dimensions; the first of source, medium, campaign, channel breaks the rows down by the entry session's value."
          }
        ],
        "responses": {
          "200": {
            "description": "Persons reaching each step of a funnel",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/FunnelReport"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "403": {
            "$ref": "#/components/responses/Forbidden"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          }
        }
      }
    },
    "/": {
      "get": {
        "operationId": "dashboard",
        "tags": [
          "meta"
        ],
        "summary": "The dashboard (HTML)",
        "security": [],
        "responses": {
          "200": {
            "description": "The dashboard page.",
            "content": {
              "text/html": {
                "schema": {
                  "type": "string"
                }
              }
            }
          }
        }
      }
    },
    "/openapi.json": {
      "get": {
        "operationId": "openapi",
        "tags": [
          "meta"
        ],
        "summary": "This document",
        "security": [],
        "responses": {
          "200": {
            "description": "The OpenAPI 3.0 document of the QueryAPI.",
            "content": {
              "application/json": {
                "schema": {
                  "type": "object"
                }
              }
            }
          }
        }
      }
    },
    "/healthz": {
      "get": {
        "operationId": "healthz",
        "tags": [
          "operations"
        ],
        "summary": "Alive",
        "security": [],
        "responses": {
          "200": {
            "description": "The process is alive.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Health"
                }
              }
            }
          }
        }
      }
    },
    "/readyz": {
      "get": {
        "operationId": "readyz",
        "tags": [
          "operations"
        ],
        "summary": "Dependencies reachable",
        "security": [],
        "responses": {
          "200": {
            "description": "Postgres and Kafka are reachable.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Readiness"
                }
              }
            }
          },
          "503": {
            "description": "A dependency is unreachable; failing names it.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Readiness"
                }
              }
            }
          }
        }
      }
    },
    "/metrics": {
      "get": {
        "operationId": "metrics",
        "tags": [
          "operations"
        ],
        "summary": "Prometheus metrics",
        "security": [],
        "responses": {
          "200": {
            "description": "Prometheus text exposition format.",
            "content": {
              "text/plain": {
                "schema": {
                  "type": "string"
                }
              }
            }
          }
        }
      }
    }
  },
  "components": {
    "securitySchemes": {
      "adminToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "The admin token (TRIBUTARY_ADMIN_TOKEN); may also read every site."
      },
      "readKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "A site's read key (rk_…); reads that site only."
      }
    },
    "parameters": {
      "site": {
        "name": "site",
        "in": "path",
        "required": true,
        "schema": {
          "type": "string",
          "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
        },
        "description": "Site id."
      },
      "from": {
        "name": "from",
        "in": "query",
        "schema": {
          "type": "string",
          "format": "date",
          "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
        },
        "description": "First day, in the site's time zone (inclusive), 0001-01-01 or later. Default: 29 days before `to` (not before 0001-01-01). At most 10 years before `to`."
      },
      "to": {
        "name": "to",
        "in": "query",
        "schema": {
          "type": "string",
          "format": "date",
          "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
        },
        "description": "Last day, in the site's time zone (inclusive), 0001-01-01 or later. Default: today. Not before `from`."
      },
      "breakdown": {
        "name": "breakdown",
        "in": "query",
        "schema": {
          "type": "string",
          "pattern": "^(source|medium|campaign|channel|landing_page|referrer_domain|day|week|month)(,(source|medium|campaign|channel|landing_page|referrer_domain|day|week|month))*$"
        },
        "description": "Comma-separated dimensions to group rows by: source, medium, campaign, channel, landing_page, referrer_domain, day, week, month."
      },
      "filter_source": {
        "name": "filter[source]",
        "in": "query",
        "schema": {
          "type": "string"
        },
        "description": "Only rows whose source equals this value."
      },
      "filter_medium": {
        "name": "filter[medium]",
        "in": "query",
        "schema": {
          "type": "string"
        },
        "description": "Only rows whose medium equals this value."
      },
      "filter_campaign": {
        "name": "filter[campaign]",
        "in": "query",
        "schema": {
          "type": "string"
        },
        "description": "Only rows whose campaign equals this value."
      },
      "filter_channel": {
        "name": "filter[channel]",
        "in": "query",
        "schema": {
          "type": "string"
        },
        "description": "Only rows whose channel equals this value."
      },
      "filter_landing_page": {
        "name": "filter[landing_page]",
        "in": "query",
        "schema": {
          "type": "string"
        },
        "description": "Only rows whose landing_page equals this value."
      },
      "filter_referrer_domain": {
        "name": "filter[referrer_domain]",
        "in": "query",
        "schema": {
          "type": "string"
        },
        "description": "Only rows whose referrer_domain equals this value."
      },
      "filter_day": {
        "name": "filter[day]",
        "in": "query",
        "schema": {
          "type": "string"
        },
        "description": "Only rows whose day equals this value."
      },
      "filter_week": {
        "name": "filter[week]",
        "in": "query",
        "schema": {
          "type": "string"
        },
        "description": "Only rows whose week equals this value."
      },
      "filter_month": {
        "name": "filter[month]",
        "in": "query",
        "schema": {
          "type": "string"
        },
        "description": "Only rows whose month equals this value."
      },
      "goalId": {
        "name": "id",
        "in": "path",
        "required": true,
        "schema": {
          "type": "string",
          "pattern": "^[0-9]+$"
        },
        "description": "Goal id."
      },
      "funnelId": {
        "name": "id",
        "in": "path",
        "required": true,
        "schema": {
          "type": "string",
          "pattern": "^[0-9]+$"
        },
        "description": "Funnel id."
      }
    },
    "responses": {
      "BadRequest": {
        "description": "Invalid parameter or body (code invalid_parameter, invalid_json or missing_field; field names it).",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      },
      "Unauthorized": {
        "description": "No bearer token, or an unknown or revoked one.",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      },
      "Forbidden": {
        "description": "The token may not do this: a server key, another site's read key, or admin endpoints disabled (no TRIBUTARY_ADMIN_TOKEN).",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      },
      "NotFound": {
        "description": "No such site, goal or funnel.",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      },
      "Conflict": {
        "description": "A site with this id exists.",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      },
      "TooLarge": {
        "description": "The body is larger than 64 KiB.",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      }
    },
    "schemas": {
      "Error": {
        "type": "object",
        "properties": {
          "error": {
            "type": "object",
            "properties": {
              "code": {
                "type": "string",
                "description": "Machine-readable reason, e.g. invalid_parameter, not_found, unauthorized."
              },
              "message": {
                "type": "string"
              },
              "field": {
                "type": "string",
                "description": "The parameter or body field at fault."
              },
              "index": {
                "type": "integer",
                "minimum": 0
              },
              "errors": {
                "type": "array",
                "items": {
                  "type": "object"
                }
              }
            },
            "required": [
              "code",
              "message"
            ],
            "additionalProperties": false
          }
        },
        "required": [
          "error"
        ],
        "additionalProperties": false,
        "description": "Every refusal: {\"error\": {\"code\", \"message\", \"field\"?, \"index\"?}}."
      },
      "Money": {
        "type": "object",
        "properties": {
          "currency": {
            "type": "string",
            "pattern": "^[A-Z]{3}$",
            "description": "ISO 4217 code."
          },
          "amount": {
            "type": "string",
            "pattern": "^-?[0-9]+([.][0-9]+)?$",
            "description": "Decimal text with the currency's minor digits, e.g. \"238.00\"."
          },
          "amount_minor": {
            "type": "integer",
            "description": "The same amount in minor units, e.g. 23800."
          }
        },
        "required": [
          "currency",
          "amount",
          "amount_minor"
        ],
        "additionalProperties": false,
        "description": "An amount of one currency. Amounts of different currencies are never added up: money is always a list with one entry per currency, sorted by code."
      },
      "MoneyList": {
        "type": "array",
        "items": {
          "$ref": "#/components/schemas/Money"
        }
      },
      "SiteCreate": {
        "type": "object",
        "properties": {
          "id": {
            "type": "string",
            "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
            "description": "Site id: a letter or digit, then up to 63 letters, digits, '.', '_' or '-'."
          },
          "name": {
            "type": "string",
            "description": "Display name; default: the id."
          },
          "timezone": {
            "type": "string",
            "description": "IANA time zone deciding report days; default UTC.",
            "example": "Europe/Berlin"
          },
          "allowed_origins": {
            "type": "array",
            "items": {
              "type": "string"
            },
            "description": "Origins browser events may come from."
          },
          "session_timeout_minutes": {
            "type": "integer",
            "minimum": 1,
            "maximum": 1440,
            "default": 30
          },
          "session_max_length_minutes": {
            "type": "integer",
            "minimum": 1,
            "maximum": 10080,
            "default": 1440
          },
          "split_sessions_at_midnight": {
            "type": "boolean",
            "default": false
          }
        },
        "required": [
          "id"
        ],
        "additionalProperties": false
      },
      "SiteKeys": {
        "type": "object",
        "properties": {
          "site": {
            "type": "string",
            "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
          },
          "server_key": {
            "type": "string",
            "pattern": "^sk_",
            "description": "Sends server events for this site only. Shown once."
          },
          "read_key": {
            "type": "string",
            "pattern": "^rk_",
            "description": "Reads this site's reports only. Shown once."
          }
        },
        "required": [
          "site",
          "server_key",
          "read_key"
        ],
        "additionalProperties": false
      },
      "Site": {
        "type": "object",
        "properties": {
          "id": {
            "type": "string",
            "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
          },
          "name": {
            "type": "string"
          },
          "timezone": {
            "type": "string"
          },
          "allowed_origins": {
            "type": "array",
            "items": {
              "type": "string"
            }
          },
          "session_timeout_minutes": {
            "type": "integer",
            "minimum": 1
          }
        },
        "required": [
          "id",
          "name",
          "timezone",
          "allowed_origins",
          "session_timeout_minutes"
        ],
        "additionalProperties": false
      },
      "SiteList": {
        "type": "object",
        "properties": {
          "sites": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/Site"
            }
          }
        },
        "required": [
          "sites"
        ],
        "additionalProperties": false
      },
      "RevenueFigures": {
        "type": "object",
        "properties": {
          "orders": {
            "type": "integer",
            "minimum": 0
          },
          "first_orders": {
            "type": "integer",
            "minimum": 0
          },
          "revenue": {
            "$ref": "#/components/schemas/MoneyList"
          },
          "refunds": {
            "$ref": "#/components/schemas/MoneyList"
          },
          "net_revenue": {
            "$ref": "#/components/schemas/MoneyList"
          },
          "aov": {
            "$ref": "#/components/schemas/MoneyList"
          }
        },
        "required": [
          "orders",
          "first_orders",
          "revenue",
          "refunds",
          "net_revenue",
          "aov"
        ],
        "additionalProperties": false,
        "description": "aov: average order value per currency, rounded half away from zero to the minor unit."
      },
      "RevenueRow": {
        "type": "object",
        "properties": {
          "orders": {
            "type": "integer",
            "minimum": 0
          },
          "first_orders": {
            "type": "integer",
            "minimum": 0
          },
          "revenue": {
            "$ref": "#/components/schemas/MoneyList"
          },
          "refunds": {
            "$ref": "#/components/schemas/MoneyList"
          },
          "net_revenue": {
            "$ref": "#/components/schemas/MoneyList"
          },
          "aov": {
            "$ref": "#/components/schemas/MoneyList"
          },
          "source": {
            "type": "string"
          },
          "medium": {
            "type": "string"
          },
          "campaign": {
            "type": "string"
          },
          "channel": {
            "type": "string"
          },
          "landing_page": {
            "type": "string"
          },
          "referrer_domain": {
            "type": "string"
          },
          "day": {
            "type": "string"
          },
          "week": {
            "type": "string"
          },
          "month": {
            "type": "string"
          }
        },
        "required": [
          "orders",
          "first_orders",
          "revenue",
          "refunds",
          "net_revenue",
          "aov"
        ],
        "additionalProperties": false,
        "description": "One row per combination of the breakdown's values; each requested dimension is a member (day/week as YYYY-MM-DD, month as YYYY-MM)."
      },
      "RevenueReport": {
        "type": "object",
        "properties": {
          "site": {
            "type": "string",
            "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
          },
          "from": {
            "type": "string",
            "format": "date",
            "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
          },
          "to": {
            "type": "string",
            "format": "date",
            "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
          },
          "breakdown": {
            "type": "array",
            "items": {
              "type": "string",
              "enum": [
                "source",
                "medium",
                "campaign",
                "channel",
                "landing_page",
                "referrer_domain",
                "day",
                "week",
                "month"
              ]
            }
          },
          "rows": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/RevenueRow"
            }
          },
          "totals": {
            "$ref": "#/components/schemas/RevenueFigures"
          }
        },
        "required": [
          "site",
          "from",
          "to",
          "breakdown",
          "rows",
          "totals"
        ],
        "additionalProperties": false
      },
      "OverviewReport": {
        "type": "object",
        "properties": {
          "site": {
            "type": "string",
            "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
          },
          "from": {
            "type": "string",
            "format": "date",
            "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
          },
          "to": {
            "type": "string",
            "format": "date",
            "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
          },
          "visitors": {
            "type": "integer",
            "minimum": 0
          },
          "sessions": {
            "type": "integer",
            "minimum": 0
          },
          "pageviews": {
            "type": "integer",
            "minimum": 0
          },
          "conversions": {
            "type": "integer",
            "minimum": 0,
            "description": "Orders in the range."
          },
          "conversion_rate": {
            "type": "number",
            "minimum": 0,
            "description": "conversions / sessions, four decimals."
          },
          "orders": {
            "type": "integer",
            "minimum": 0
          },
          "first_orders": {
            "type": "integer",
            "minimum": 0
          },
          "revenue": {
            "$ref": "#/components/schemas/MoneyList"
          },
          "refunds": {
            "$ref": "#/components/schemas/MoneyList"
          },
          "net_revenue": {
            "$ref": "#/components/schemas/MoneyList"
          },
          "aov": {
            "$ref": "#/components/schemas/MoneyList"
          }
        },
        "required": [
          "site",
          "from",
          "to",
          "visitors",
          "sessions",
          "pageviews",
          "conversions",
          "conversion_rate",
          "orders",
          "first_orders",
          "revenue",
          "refunds",
          "net_revenue",
          "aov"
        ],
        "additionalProperties": false
      },
      "ProductsReport": {
        "type": "object",
        "properties": {
          "site": {
            "type": "string",
            "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
          },
          "from": {
            "type": "string",
            "format": "date",
            "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
          },
          "to": {
            "type": "string",
            "format": "date",
            "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
          },
          "breakdown": {
            "type": "string",
            "enum": [
              "product_id",
              "sku",
              "category",
              "brand",
              "name",
              "variant"
            ]
          },
          "rows": {
            "type": "array",
            "items": {
              "type": "object",
              "properties": {
                "product_id": {
                  "type": "string"
                },
                "sku": {
                  "type": "string"
                },
                "category": {
                  "type": "string"
                },
                "brand": {
                  "type": "string"
                },
                "name": {
                  "type": "string"
                },
                "variant": {
                  "type": "string"
                },
                "quantity": {
                  "type": "integer"
                },
                "orders": {
                  "type": "integer",
                  "minimum": 0
                },
                "revenue": {
                  "$ref": "#/components/schemas/MoneyList"
                }
              },
              "required": [
                "quantity",
                "orders",
                "revenue"
              ],
              "additionalProperties": false,
              "description": "The breakdown dimension is a member; '(not set)' when line items lack it."
            }
          }
        },
        "required": [
          "site",
          "from",
          "to",
          "breakdown",
          "rows"
        ],
        "additionalProperties": false
      },
      "AttributionReport": {
        "type": "object",
        "properties": {
          "site": {
            "type": "string",
            "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
          },
          "from": {
            "type": "string",
            "format": "date",
            "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
          },
          "to": {
            "type": "string",
            "format": "date",
            "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
          },
          "model": {
            "type": "string",
            "enum": [
              "last_touch",
              "last_non_direct",
              "first_touch",
              "linear",
              "position_based",
              "time_decay"
            ]
          },
          "conversion": {
            "type": "string"
          },
          "lookback_days": {
            "type": "integer",
            "minimum": 1,
            "maximum": 365
          },
          "conversions": {
            "type": "integer",
            "minimum": 0,
            "description": "Conversions in the range."
          },
          "revenue": {
            "$ref": "#/components/schemas/MoneyList"
          },
          "rows": {
            "type": "array",
            "items": {
              "type": "object",
              "properties": {
                "source": {
                  "type": "string"
                },
                "medium": {
                  "type": "string"
                },
                "campaign": {
                  "type": "string"
                },
                "channel": {
                  "type": "string"
                },
                "conversions": {
                  "type": "number",
                  "minimum": 0,
                  "description": "Fractional credit with six decimals; the credits of one conversion sum to 1."
                },
                "revenue": {
                  "$ref": "#/components/schemas/MoneyList"
                }
              },
              "required": [
                "source",
                "medium",
                "campaign",
                "channel",
                "conversions",
                "revenue"
              ],
              "additionalProperties": false
            }
          }
        },
        "required": [
          "site",
          "from",
          "to",
          "model",
          "conversion",
          "lookback_days",
          "conversions",
          "revenue",
          "rows"
        ],
        "additionalProperties": false
      },
      "RetentionReport": {
        "type": "object",
        "properties": {
          "site": {
            "type": "string",
            "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
          },
          "from": {
            "type": "string",
            "format": "date",
            "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
          },
          "to": {
            "type": "string",
            "format": "date",
            "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
          },
          "event": {
            "type": "string"
          },
          "period": {
            "type": "string",
            "enum": [
              "day",
              "week",
              "month"
            ]
          },
          "cohorts": {
            "type": "array",
            "items": {
              "type": "object",
              "properties": {
                "cohort": {
                  "type": "string",
                  "format": "date",
                  "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
                  "description": "First day of the cohort's period."
                },
                "persons": {
                  "type": "integer",
                  "minimum": 0,
                  "description": "Persons whose first matching event fell in the cohort's period."
                },
                "periods": {
                  "type": "array",
                  "items": {
                    "type": "object",
                    "properties": {
                      "period": {
                        "type": "integer",
                        "minimum": 1
                      },
                      "persons": {
                        "type": "integer",
                        "minimum": 0
                      },
                      "share": {
                        "type": "number",
                        "minimum": 0,
                        "description": "persons / cohort persons, four decimals."
                      }
                    },
                    "required": [
                      "period",
                      "persons",
                      "share"
                    ],
                    "additionalProperties": false
                  }
                }
              },
              "required": [
                "cohort",
                "persons",
                "periods"
              ],
              "additionalProperties": false
            }
          }
        },
        "required": [
          "site",
          "from",
          "to",
          "event",
          "period",
          "cohorts"
        ],
        "additionalProperties": false
      },
      "EventMatch": {
        "type": "object",
        "description": "Which events match: any combination of these criteria, at least one. path is a glob over the URL's path (* any characters, ? one).",
        "properties": {
          "action": {
            "type": "string",
            "enum": [
              "view_item",
              "add_to_cart",
              "remove_from_cart",
              "begin_checkout",
              "add_payment_info",
              "purchase",
              "refund",
              "viewed_product",
              "view_product",
              "product_viewed",
              "added_to_cart",
              "product_added",
              "removed_from_cart",
              "product_removed",
              "started_checkout",
              "checkout_started",
              "payment_info_entered",
              "completed_checkout",
              "order_completed",
              "refunded",
              "order_refunded"
            ],
            "description": "A standard e-commerce action or one of its aliases."
          },
          "name": {
            "type": "string",
            "minLength": 1,
            "description": "The event name as sent."
          },
          "type": {
            "type": "string",
            "enum": [
              "pageview",
              "event",
              "identify"
            ]
          },
          "path": {
            "type": "string",
            "minLength": 1
          },
          "properties": {
            "type": "object",
            "minProperties": 1,
            "description": "Property values the event's properties must contain."
          }
        },
        "anyOf": [
          {
            "required": [
              "action"
            ]
          },
          {
            "required": [
              "name"
            ]
          },
          {
            "required": [
              "type"
            ]
          },
          {
            "required": [
              "path"
            ]
          },
          {
            "required": [
              "properties"
            ]
          }
        ],
        "additionalProperties": false
      },
      "StoredEventMatch": {
        "type": "object",
        "description": "A match as stored.",
        "properties": {
          "action": {
            "type": "string",
            "enum": [
              "view_item",
              "add_to_cart",
              "remove_from_cart",
              "begin_checkout",
              "add_payment_info",
              "purchase",
              "refund"
            ],
            "description": "Aliases are stored as the standard action."
          },
          "name": {
            "type": "string",
            "minLength": 1,
            "description": "The event name as sent."
          },
          "type": {
            "type": "string",
            "enum": [
              "pageview",
              "event",
              "identify"
            ]
          },
          "path": {
            "type": "string",
            "minLength": 1
          },
          "properties": {
            "type": "object",
            "minProperties": 1,
            "description": "Property values the event's properties must contain."
          }
        },
        "anyOf": [
          {
            "required": [
              "action"
            ]
          },
          {
            "required": [
              "name"
            ]
          },
          {
            "required": [
              "type"
            ]
          },
          {
            "required": [
              "path"
            ]
          },
          {
            "required": [
              "properties"
            ]
          }
        ],
        "additionalProperties": false
      },
      "GoalCreate": {
        "type": "object",
        "properties": {
          "name": {
            "type": "string",
            "minLength": 1
          },
          "match": {
            "$ref": "#/components/schemas/EventMatch"
          },
          "revenue": {
            "type": "boolean",
            "default": true,
            "description": "Whether the matching events' money is the goal's revenue."
          }
        },
        "required": [
          "name",
          "match"
        ],
        "additionalProperties": false
      },
      "Goal": {
        "type": "object",
        "properties": {
          "id": {
            "type": "string",
            "pattern": "^[0-9]+$"
          },
          "name": {
            "type": "string"
          },
          "match": {
            "$ref": "#/components/schemas/StoredEventMatch"
          },
          "revenue": {
            "type": "boolean"
          }
        },
        "required": [
          "id",
          "name",
          "match",
          "revenue"
        ],
        "additionalProperties": false
      },
      "GoalList": {
        "type": "object",
        "properties": {
          "goals": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/Goal"
            }
          }
        },
        "required": [
          "goals"
        ],
        "additionalProperties": false
      },
      "GoalReport": {
        "type": "object",
        "properties": {
          "computed_from": {
            "type": "string",
            "enum": ["rollup", "facts"],
            "description": "rollup once the Aggregator has built the definition's rollup (backfilled from the stored facts); facts until then (same figures, computed at query time)."
          },
          "visitors": {
            "type": "integer",
            "minimum": 0
          },
          "converters": {
            "type": "integer",
            "minimum": 0
          },
          "conversions": {
            "type": "integer",
            "minimum": 0
          },
          "conversion_rate": {
            "type": "number",
            "minimum": 0,
            "description": "converters / visitors, four decimals."
          },
          "revenue": {
            "$ref": "#/components/schemas/MoneyList"
          },
          "goal": {
            "$ref": "#/components/schemas/Goal"
          },
          "site": {
            "type": "string",
            "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
          },
          "from": {
            "type": "string",
            "format": "date",
            "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
          },
          "to": {
            "type": "string",
            "format": "date",
            "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
          },
          "rows": {
            "type": "array",
            "items": {
              "type": "object",
              "properties": {
                "visitors": {
                  "type": "integer",
                  "minimum": 0
                },
                "converters": {
                  "type": "integer",
                  "minimum": 0
                },
                "conversions": {
                  "type": "integer",
                  "minimum": 0
                },
                "conversion_rate": {
                  "type": "number",
                  "minimum": 0,
                  "description": "converters / visitors, four decimals."
                },
                "revenue": {
                  "$ref": "#/components/schemas/MoneyList"
                },
                "source": {
                  "type": "string"
                },
                "medium": {
                  "type": "string"
                },
                "campaign": {
                  "type": "string"
                },
                "channel": {
                  "type": "string"
                },
                "landing_page": {
                  "type": "string"
                },
                "referrer_domain": {
                  "type": "string"
                },
                "day": {
                  "type": "string"
                }
              },
              "required": [
                "visitors",
                "converters",
                "conversions",
                "conversion_rate",
                "revenue"
              ],
              "additionalProperties": false
            },
            "description": "One row per value of the breakdown (source dimensions and day); empty without breakdown."
          }
        },
        "required": [
          "computed_from",
          "visitors",
          "converters",
          "conversions",
          "conversion_rate",
          "revenue",
          "goal",
          "site",
          "from",
          "to",
          "rows"
        ],
        "additionalProperties": false
      },
      "FunnelStepCreate": {
        "type": "object",
        "description": "A funnel step: an event match (at least one criterion) plus an optional label.",
        "properties": {
          "action": {
            "type": "string",
            "enum": [
              "view_item",
              "add_to_cart",
              "remove_from_cart",
              "begin_checkout",
              "add_payment_info",
              "purchase",
              "refund",
              "viewed_product",
              "view_product",
              "product_viewed",
              "added_to_cart",
              "product_added",
              "removed_from_cart",
              "product_removed",
              "started_checkout",
              "checkout_started",
              "payment_info_entered",
              "completed_checkout",
              "order_completed",
              "refunded",
              "order_refunded"
            ],
            "description": "A standard e-commerce action or one of its aliases."
          },
          "name": {
            "type": "string",
            "minLength": 1,
            "description": "The event name as sent."
          },
          "type": {
            "type": "string",
            "enum": [
              "pageview",
              "event",
              "identify"
            ]
          },
          "path": {
            "type": "string",
            "minLength": 1
          },
          "properties": {
            "type": "object",
            "minProperties": 1,
            "description": "Property values the event's properties must contain."
          },
          "label": {
            "type": "string",
            "description": "The step's name in reports; default: its action, name, path or type."
          }
        },
        "anyOf": [
          {
            "required": [
              "action"
            ]
          },
          {
            "required": [
              "name"
            ]
          },
          {
            "required": [
              "type"
            ]
          },
          {
            "required": [
              "path"
            ]
          },
          {
            "required": [
              "properties"
            ]
          }
        ],
        "additionalProperties": false
      },
      "FunnelCreate": {
        "type": "object",
        "properties": {
          "name": {
            "type": "string",
            "minLength": 1
          },
          "steps": {
            "type": "array",
            "minItems": 2,
            "maxItems": 20,
            "items": {
              "$ref": "#/components/schemas/FunnelStepCreate"
            }
          },
          "window": {
            "type": "string",
            "pattern": "^0*[1-9][0-9]{0,4}[mhd]$",
            "default": "7d",
            "description": "How long after entering a person may take for the remaining steps: 30m, 12h or 7d, at most 90d."
          },
          "order": {
            "type": "string",
            "enum": [
              "sequential",
              "strict",
              "any"
            ],
            "default": "sequential",
            "description": "sequential: in order, other events may come between; strict: in order with nothing between; any: any order within the window."
          }
        },
        "required": [
          "name",
          "steps"
        ],
        "additionalProperties": false
      },
      "Funnel": {
        "type": "object",
        "properties": {
          "id": {
            "type": "string",
            "pattern": "^[0-9]+$"
          },
          "name": {
            "type": "string"
          },
          "window": {
            "type": "string",
            "pattern": "^[1-9][0-9]*[mhd]$"
          },
          "order": {
            "type": "string",
            "enum": [
              "sequential",
              "strict",
              "any"
            ]
          },
          "steps": {
            "type": "array",
            "minItems": 2,
            "maxItems": 20,
            "items": {
              "type": "object",
              "description": "A stored step: its match and label.",
              "properties": {
                "action": {
                  "type": "string",
                  "enum": [
                    "view_item",
                    "add_to_cart",
                    "remove_from_cart",
                    "begin_checkout",
                    "add_payment_info",
                    "purchase",
                    "refund"
                  ],
                  "description": "Aliases are stored as the standard action."
                },
                "name": {
                  "type": "string",
                  "minLength": 1,
                  "description": "The event name as sent."
                },
                "type": {
                  "type": "string",
                  "enum": [
                    "pageview",
                    "event",
                    "identify"
                  ]
                },
                "path": {
                  "type": "string",
                  "minLength": 1
                },
                "properties": {
                  "type": "object",
                  "minProperties": 1,
                  "description": "Property values the event's properties must contain."
                },
                "label": {
                  "type": "string"
                }
              },
              "anyOf": [
                {
                  "required": [
                    "action"
                  ]
                },
                {
                  "required": [
                    "name"
                  ]
                },
                {
                  "required": [
                    "type"
                  ]
                },
                {
                  "required": [
                    "path"
                  ]
                },
                {
                  "required": [
                    "properties"
                  ]
                }
              ],
              "additionalProperties": false,
              "required": [
                "label"
              ]
            }
          }
        },
        "required": [
          "id",
          "name",
          "window",
          "order",
          "steps"
        ],
        "additionalProperties": false
      },
      "FunnelList": {
        "type": "object",
        "properties": {
          "funnels": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/Funnel"
            }
          }
        },
        "required": [
          "funnels"
        ],
        "additionalProperties": false
      },
      "FunnelStepFigures": {
        "type": "object",
        "properties": {
          "name": {
            "type": "string"
          },
          "persons": {
            "type": "integer",
            "minimum": 0
          },
          "conversion_from_previous": {
            "type": "number",
            "minimum": 0,
            "description": "persons / persons of the previous step (1 for the first), four decimals.",
            "maximum": 1
          },
          "conversion_from_start": {
            "type": "number",
            "minimum": 0,
            "description": "persons / persons of the first step, four decimals.",
            "maximum": 1
          },
          "dropped": {
            "type": "integer",
            "minimum": 0,
            "description": "Persons of the previous step who did not reach this one."
          },
          "median_seconds_from_previous": {
            "type": "integer",
            "minimum": 0,
            "nullable": true,
            "description": "null for the first step and when nobody reached it."
          },
          "revenue": {
            "$ref": "#/components/schemas/MoneyList"
          }
        },
        "required": [
          "name",
          "persons",
          "conversion_from_previous",
          "conversion_from_start",
          "dropped",
          "median_seconds_from_previous",
          "revenue"
        ],
        "additionalProperties": false
      },
      "FunnelReport": {
        "type": "object",
        "properties": {
          "computed_from": {
            "type": "string",
            "enum": ["rollup", "facts"],
            "description": "rollup once the Aggregator has built the definition's rollup (backfilled from the stored facts); facts until then (same figures, computed at query time)."
          },
          "funnel": {
            "$ref": "#/components/schemas/Funnel"
          },
          "site": {
            "type": "string",
            "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
          },
          "from": {
            "type": "string",
            "format": "date",
            "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
          },
          "to": {
            "type": "string",
            "format": "date",
            "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
          },
          "breakdown": {
            "type": "string",
            "enum": [
              "source",
              "medium",
              "campaign",
              "channel"
            ],
            "description": "Present when rows are broken down."
          },
          "steps": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/FunnelStepFigures"
            }
          },
          "rows": {
            "type": "array",
            "items": {
              "type": "object",
              "properties": {
                "source": {
                  "type": "string"
                },
                "medium": {
                  "type": "string"
                },
                "campaign": {
                  "type": "string"
                },
                "channel": {
                  "type": "string"
                },
                "steps": {
                  "type": "array",
                  "items": {
                    "$ref": "#/components/schemas/FunnelStepFigures"
                  }
                }
              },
              "required": [
                "steps"
              ],
              "additionalProperties": false
            },
            "description": "Per value of the breakdown dimension of the session where each person entered; empty without breakdown."
          }
        },
        "required": [
          "computed_from",
          "funnel",
          "site",
          "from",
          "to",
          "steps",
          "rows"
        ],
        "additionalProperties": false
      },
      "Health": {
        "type": "object",
        "properties": {
          "status": {
            "type": "string",
            "enum": [
              "ok"
            ]
          }
        },
        "required": [
          "status"
        ],
        "additionalProperties": false
      },
      "Readiness": {
        "type": "object",
        "properties": {
          "status": {
            "type": "string",
            "enum": [
              "ready",
              "unavailable"
            ]
          },
          "failing": {
            "type": "array",
            "items": {
              "type": "string"
            },
            "description": "Unreachable dependencies (postgres, kafka)."
          }
        },
        "required": [
          "status",
          "failing"
        ],
        "additionalProperties": false
      }
    }
  }
}
"""##
}
