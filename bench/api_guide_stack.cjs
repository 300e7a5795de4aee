// The guide's own stack for `GET /api/videos/:id`, the peer anchor of bench/api.py: Express 4,
// the guide's jsonwebtoken middleware, a pg pool, one SELECT of the caller's video.
// Run by bench/api.py from a temporary directory where it installed express@4, pg and
// jsonwebtoken with npm. Environment: PORT, DATABASE_URL (postgresql://…), JWT_SECRET.
const express = require("express");
const jwt = require("jsonwebtoken");
const { Pool } = require("pg");

const pool = new Pool({ connectionString: process.env.DATABASE_URL });
const app = express();
app.use(express.json());

// The guide's authMiddleware, as printed.
const authMiddleware = (req, res, next) => {
  const token = req.headers.authorization?.split(" ")[1];
  if (!token) {
    return res.status(401).json({ error: "Unauthorized" });
  }
  try {
    req.user = jwt.verify(token, process.env.JWT_SECRET);
    next();
  } catch (error) {
    res.status(401).json({ error: "Invalid token" });
  }
};

app.get("/api/videos/:id", authMiddleware, async (req, res) => {
  try {
    // The guide reads by id alone; the owner is checked in the same statement here, as
    // Reelforge checks it, so both answer the same question.
    const result = await pool.query(
      "SELECT * FROM videos WHERE id = $1 AND owner_id = $2 AND deleted_at IS NULL",
      [req.params.id, req.user.sub],
    );
    if (result.rows.length === 0) {
      return res.status(404).json({ error: "Video not found" });
    }
    res.json({ data: result.rows[0] });
  } catch (error) {
    res.status(500).json({ error: "Internal server error" });
  }
});

app.listen(Number(process.env.PORT), "127.0.0.1");
